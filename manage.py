#!/usr/bin/env python
import os
import sys
from pathlib import Path


def _use_the_checkouts_venv() -> None:
    """`python manage.py ...` as the README writes it, from a shell whose python lacks Django:
    run again with this checkout's .venv (which `make run` / `make install` set up)."""
    venv = Path(__file__).resolve().parent / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(python, [str(python), *sys.argv])  # noqa: S606 - our own interpreter, no shell
    sys.stderr.write(
        "Django is not installed for this python: run `make install` (or `make run`) once, "
        "then `python manage.py ...` uses .venv.\n"
    )
    sys.exit(1)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadchat.settings")
    try:
        from django.core.exceptions import ImproperlyConfigured
        from django.core.management import execute_from_command_line
    except ModuleNotFoundError:
        _use_the_checkouts_venv()

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A missing or wrong setting (SECRET_KEY without DEBUG, above all): one line saying
        # what to set, not a traceback through Django's internals. --traceback shows it.
        if "--traceback" in sys.argv:
            raise
        sys.stderr.write(f"leadchat is not configured: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
