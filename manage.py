#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadchat.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

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
