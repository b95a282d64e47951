"""Dependencies point one way (widget -> sessions_app <- qa): sessions_app reads sites through
`widget.selectors`, never `widget.models` (its models and migrations aside, for the foreign key)."""

import ast
from pathlib import Path

import sessions_app

APP = Path(sessions_app.__file__).parent


def _imports_widget_models(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names}
            if node.module == "widget.models" or (node.module == "widget" and "models" in names):
                return True
        if isinstance(node, ast.Import) and any(a.name == "widget.models" for a in node.names):
            return True
    return False


def _code_files() -> list[Path]:
    files = []
    for path in APP.rglob("*.py"):
        rel = path.relative_to(APP)
        if rel.parts[0] == "migrations" or "tests" in rel.parts or rel.name == "models.py":
            continue
        files.append(path)
    return files


def test_sessions_app_code_does_not_import_widget_models():
    offenders = [str(p.relative_to(APP)) for p in _code_files() if _imports_widget_models(p)]
    assert offenders == []


def test_the_import_check_sees_an_import_of_widget_models(tmp_path):
    for line in (
        "from widget.models import Site",
        "from widget import models",
        "import widget.models",
    ):
        module = tmp_path / "m.py"
        module.write_text(line + "\n")
        assert _imports_widget_models(module), line
    module.write_text("from widget import selectors\n")
    assert not _imports_widget_models(module)
