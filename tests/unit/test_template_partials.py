"""Fragments are `{% partialdef %}` blocks of the template that owns them (STYLE.md 4, issue
17.8): no separate `_name.html` fragment files, every `{% include %}` names a partial
(`"screen.html#name"`, or `"partials.html#name"` for the few every app shares), and every
`"x.html#name"` the templates and the code name exists. Reads the files; no database."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
CODE = [
    "config",
    "engagement",
    "integrations",
    "notifications",
    "portfolio",
    "prioritization",
    "triage",
    "ui",
    "usage",
    "workspace",
]
INCLUDE = re.compile(r"{%\s*include\s+\"([^\"]+)\"")
PARTIAL_NAME = re.compile(r"[\"']([\w/.-]+\.html)#([\w-]+)[\"']")
PARTIALDEF = re.compile(r"{%\s*partialdef\s+([\w-]+)")
EXAMPLE = "screen.html"  # docstrings' "screen.html#partial"


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_no_fragment_files():
    fragments = [str(p.relative_to(TEMPLATES)) for p in _templates() if p.name.startswith("_")]
    assert not fragments, f"make these partialdefs of the template that owns them: {fragments}"


def test_every_include_names_a_partial():
    whole = [
        f"{p.relative_to(TEMPLATES)}: {name}"
        for p in _templates()
        for name in INCLUDE.findall(p.read_text())
        if "#" not in name
    ]
    assert not whole, f"include a partial (template.html#name), not a whole file: {whole}"


def test_every_partial_named_exists():
    sources = [*_templates(), *(p for d in CODE for p in (ROOT / d).rglob("*.py"))]
    missing = []
    for source in sources:
        for template, name in PARTIAL_NAME.findall(source.read_text()):
            if template == EXAMPLE:
                continue
            path = TEMPLATES / template
            if not path.exists() or name not in PARTIALDEF.findall(path.read_text()):
                missing.append(f"{source.relative_to(ROOT)}: {template}#{name}")
    assert not missing, missing
