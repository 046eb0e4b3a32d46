"""Module boundaries of DESIGN.md, enforced by walking every import of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "monitor"
CORE = {
    "models",
    "config",
    "durations",
    "alert_config",
    "alerting",
    "catalogue",
    "x402",
    "assess",
    "stats",
    "urls",
    "addresses",
    "snapshot",
    "schedule",
    "untrusted",
    "content_coding",
    "config_reading",
}
EDGES = {"probe", "discovery", "store", "site", "metrics", "alerts", "web"}
SHELL = {
    "service",
    "dispatch",
    "rounds",
    "cli",
    "report",
    "notify",
    "pages",
    "indexing",
    "__main__",
}
EDGE_LIBRARIES = {
    "httpx",
    "httpcore",
    "sqlmodel",
    "sqlalchemy",
    "jinja2",
    "prometheus_client",
    "apscheduler",
    "asyncio",
    "rich",
}
CLOCK_AND_ENVIRONMENT = ("datetime.now", "datetime.utcnow", "time.time", "os.environ", "getenv")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _top(path: Path) -> str:
    """Return the first-level component a file belongs to (`x402` for monitor/x402/rules.py)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_module_has_a_known_layer() -> None:
    unknown = {_top(path) for path in _modules()} - CORE - EDGES - SHELL - {"__init__"}
    assert not unknown, f"add {unknown} to a layer in this test and in DESIGN.md's layout"


@pytest.mark.parametrize("path", [p for p in _modules() if _top(p) in CORE], ids=_top)
def test_core_imports_no_edge_library_and_no_edge(path: Path) -> None:
    for name in _imports(path):
        root = name.split(".")[0]
        assert root not in EDGE_LIBRARIES, f"{path.name} imports {name}"
        if root == "monitor" and len(name.split(".")) > 1:
            assert name.split(".")[1] in CORE, f"{path.name} (core) imports {name}"


@pytest.mark.parametrize("path", [p for p in _modules() if _top(p) in CORE], ids=_top)
def test_core_never_reads_the_clock_or_the_environment(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for forbidden in CLOCK_AND_ENVIRONMENT:
        assert forbidden not in source, f"{path.name} uses {forbidden}: pass it in instead"


@pytest.mark.parametrize("path", [p for p in _modules() if _top(p) in EDGES], ids=_top)
def test_edges_never_import_each_other_or_the_shell(path: Path) -> None:
    own = _top(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "monitor" and len(parts) > 1 and parts[1] != own:
            assert parts[1] in CORE, f"{path.name} ({own}) imports {name}"
