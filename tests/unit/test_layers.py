"""The apps depend downward only (issue 17.1):

    integrations
      <- portfolio (the core)
      <- prioritization, triage, engagement, usage (the domains)
      <- ui, workspace, notifications (the pages that compose them)

An app may import its own modules, any app of a lower layer, and its siblings in the same
layer; never an app above it. `config` wires the project together (settings, URLs,
Celery) and may import anything, so an app may import only the `config` modules that import
no app (`config.api`, `config.admin_lists`, ...). Every import counts, also those inside
functions: a function-level import is how an upward dependency hides.

The check reads the source (no Django, no database), so it fails on the line that adds an
upward import, with the file and line in the message.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[set[str]] = [
    {"integrations"},
    {"portfolio"},
    {"prioritization", "triage", "engagement", "usage"},
    {"ui", "workspace", "notifications"},
]
RANK = {app: rank for rank, apps in enumerate(LAYERS) for app in apps}
PROJECT = {*RANK, "config"}


def _modules(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import of a project package in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.extend((node.lineno, name) for name in names if name.split(".")[0] in PROJECT)
    return found


def _config_module_imports_apps(module: str) -> bool:
    parts = module.split(".")
    path = ROOT.joinpath(*parts).with_suffix(".py")
    if not path.exists():
        path = ROOT.joinpath(*parts, "__init__.py")
    return any(name.split(".")[0] in RANK for _, name in _imports(path))


def _violations() -> list[str]:
    out = []
    for app, rank in sorted(RANK.items()):
        for path in _modules(app):
            where = path.relative_to(ROOT)
            for line, module in _imports(path):
                target = module.split(".")[0]
                if target == "config":
                    if _config_module_imports_apps(module):
                        out.append(f"{where}:{line} imports {module}, which imports apps")
                elif RANK[target] > rank:
                    out.append(
                        f"{where}:{line} imports {module}: {app} (layer {rank}) may not "
                        f"depend on {target} (layer {RANK[target]})"
                    )
    return out


def test_no_app_imports_an_app_above_it():
    assert _violations() == []


def test_every_local_app_has_a_layer():
    """A new app must be placed in a layer, or the check above would ignore it."""
    apps = {
        path.parent.name
        for path in ROOT.glob("*/apps.py")
        if (path.parent / "__init__.py").exists()
    }
    assert apps - set(RANK) == set()


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path, monkeypatch):
    """The check is not vacuous: a core module importing a UI module in a function body
    is reported with its line."""
    fake = tmp_path / "portfolio"
    fake.mkdir()
    (fake / "leaky.py").write_text("def f():\n    from ui import panels\n    return panels\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "ROOT", tmp_path)
    monkeypatch.setattr(this, "RANK", {"portfolio": 1, "ui": 3})
    assert _violations() == [
        "portfolio/leaky.py:2 imports ui: portfolio (layer 1) may not depend on ui (layer 3)"
    ]


@pytest.mark.parametrize("module", ["config.api", "config.admin_lists"])
def test_the_config_helpers_apps_use_import_no_app(module):
    assert not _config_module_imports_apps(module)
