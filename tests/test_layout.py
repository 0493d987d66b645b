"""The shape of the house: packages by job, who may import whom, short files, every package installed.

Why a test: the layout is what lets a newcomer find the engine, the rules, the pipeline and patrol
from the tree alone, and what keeps the next feature in the room whose job it is. Each package's
``__init__`` docstring says what it may import; this checks the code does what the docstrings say.
"""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gridgeo"
SERVICE = ROOT / "service"

#: package (or top module) of gridgeo -> the gridgeo packages it may import. The service (installed as
#: gridgeo.service) and the CLI sit on top and may import any of them; the library never imports them.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_geom": {"errors"},
    "data": {"errors", "_geom"},
    "partition": {"errors"},
    "routing": {"errors"},
    "county": {"data", "partition", "people", "patrol", "errors", "_geom"},
    "patrol": {"data", "routing", "errors", "_geom"},
    "store": {"data", "errors"},
    "synth": {"data", "errors", "_geom"},
    "people": {"data", "patrol", "errors", "_geom"},
    "cli": {"data", "partition", "routing", "county", "patrol", "people", "synth", "store", "errors", "_geom",
            "service", "__init__"},
    "service": {"data", "partition", "routing", "county", "patrol", "people", "synth", "store", "errors", "_geom",
                "__init__"},
}
MAX_LINES = 800


def _room(path: Path) -> str:
    """The package (``data``, ``county`` ...) or top module a source file belongs to."""
    if path.is_relative_to(SERVICE):
        return "service"
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *SERVICE.rglob("*.py")])


def _gridgeo_imports(path: Path) -> set[str]:
    """The gridgeo rooms a file imports, at module level or inside functions (``__init__``: the package's own
    face, e.g. ``from gridgeo import __version__``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [f"{node.module}.{a.name}" if node.module == "gridgeo" else node.module for a in node.names]
        else:
            continue
        for name in modules:
            parts = name.split(".")
            if parts[0] == "service":
                found.add("<top-level service>")
            elif parts[0] == "gridgeo":
                found.add(parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "__init__")
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_rooms(path: Path) -> None:
    room = _room(path)
    allowed = {"errors"} if room == "__init__" else ALLOWED[room] | {room}
    bad = sorted(_gridgeo_imports(path) - allowed)
    assert not bad, f"{path.relative_to(ROOT)} ({room}) imports {bad}; allowed: {sorted(allowed)}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_files_stay_short(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines (at most {MAX_LINES}): split it by job"


def _packages() -> list[Path]:
    return sorted([p.parent for p in PACKAGE.rglob("__init__.py")] + [SERVICE])


@pytest.mark.parametrize("pkg", _packages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_package_says_what_it_holds_and_may_import(pkg: Path) -> None:
    doc = ast.get_docstring(ast.parse((pkg / "__init__.py").read_text(encoding="utf-8"))) or ""
    assert len(doc.splitlines()) >= 3, f"{pkg.relative_to(ROOT)}/__init__.py: say in a few lines what it holds"
    if pkg != PACKAGE:
        assert "May import" in doc or "may import" in doc, f"{pkg.relative_to(ROOT)}: say what it may import"


def test_every_package_is_installed() -> None:
    """setup.cfg lists packages explicitly (service/ is mapped to gridgeo.service): none may be forgotten."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.relative_to(ROOT).parts) for p in _packages() if p != SERVICE} | {"gridgeo.service"}
    assert listed == found
    assert cfg["options"]["package_dir"].split() == ["gridgeo.service", "=", "service"]


def test_service_is_not_a_top_level_package() -> None:
    """Installed, the app is ``gridgeo.service``; nothing in the package imports a top-level ``service``."""
    import gridgeo.service

    assert Path(gridgeo.service.__file__).resolve() == (SERVICE / "__init__.py").resolve()
    assert callable(gridgeo.service.create_app)
    offenders = [p for p in _sources() if "<top-level service>" in _gridgeo_imports(p)]
    assert not offenders


def test_readme_documents_every_rules_key() -> None:
    """Every section and key the rules file accepts, and every option of an input, is in the README's table."""
    from gridgeo.county.rules import _SECTIONS, INPUT_OPTIONS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    part = text[text.index("### The rules file, key by key"):text.index("### Household registers")]
    missing = [f"[{sec}]" for sec in _SECTIONS if f"`[{sec}]`" not in part]
    missing += [f"[{sec}] {key}" for sec, s in _SECTIONS.items() for key in s.keys if f"`{key}`" not in part]
    missing += [f"input option {opt}" for opt in INPUT_OPTIONS if f"| `{opt}` |" not in part]
    assert not missing, f"README's rules table lacks {missing}"
