"""The house's rules, checked on every import planner makes (module level and inside functions).

    types/ + errors      the result types: import nothing of planner's but each other
    core/                pure: types and the standard library's computing modules; every table comes in as data
    edges                data/, hardware/, models/, rendering/, serving/, checks/, config: the world, read or written
    api                  the use cases: wires edges to the core
    cli/                 the skin: options -> one api call -> one renderer

An import may only point down the list; rendering never reaches serving; no module imports itself through others
(a cycle); the core and the CLI name no I/O library themselves. `if TYPE_CHECKING:` imports count for the rings
(they are still dependencies a reader must follow) but not for cycles (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "planner"

RINGS = {  # lower number = lower ring
    "planner.errors": 0,
    "planner.types": 0,
    "planner.core": 1,
    "planner.config": 2,
    "planner.data": 2,
    "planner.hardware": 2,
    "planner.models": 2,
    "planner.rendering": 2,
    "planner.serving": 2,
    "planner.checks": 2,
    "planner.api": 3,
    "planner": 3,  # the package's face: lazy re-exports of the api and the types
    "planner.cli": 4,
    "planner.__main__": 4,
}
# Within the edges: what each may use besides the rings below it. Rendering returns text and writes nothing, so it
# never needs serving (downloads, processes); data readers sit under every other edge.
EDGE_MAY_USE = {
    "planner.config": set(),
    "planner.data": {"planner.config"},
    "planner.hardware": {"planner.config", "planner.data"},
    "planner.models": {"planner.config", "planner.data"},
    "planner.rendering": {"planner.config", "planner.data"},
    "planner.serving": {"planner.config", "planner.data", "planner.models", "planner.rendering"},
    "planner.checks": {"planner.config", "planner.data", "planner.hardware"},
}
# The CLI is a skin: it calls the api and draws with rendering; everything else it needs comes through those.
# planner.config: the CLI reads PLANNER_DEBUG there, like every other environment variable.
CLI_MAY_USE = {
    "planner", "planner.api", "planner.cli", "planner.config", "planner.errors", "planner.types", "planner.rendering"
}  # fmt: skip

IO_LIBRARIES = {
    "os", "io", "pathlib", "shutil", "subprocess", "socket", "tempfile", "urllib", "http", "glob", "sqlite3",
    "select", "selectors", "asyncio", "concurrent", "multiprocessing", "mmap", "fcntl", "ctypes", "importlib",
    "yaml", "huggingface_hub", "httpx", "httpx2", "requests", "fsspec", "filelock", "psutil", "pynvml", "openai",
    "jinja2", "rich", "typer", "click", "gguf", "llama_cpp",
}  # fmt: skip
# The CLI sets up the process (signals, exit codes) and prints through typer and rich; it opens nothing itself.
# pathlib: typer's Path option type (the CLI hands paths to the api, which opens them).
CLI_ALLOWED_IO = {"os", "typer", "click", "rich", "importlib", "pathlib"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


PLANTED: dict[Path, str] = {}  # test_the_rules_catch_a_new_violation adds a bad import to a file here


def _is_module(dotted: str) -> bool:
    where = PACKAGE.parent / dotted.replace(".", "/")
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported module, runs at all) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8") + "\n" + PLANTED.get(path, ""))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, runs: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.body:
                    visit_stmt(stmt, False)
                for stmt in child.orelse:
                    visit_stmt(stmt, runs)
                continue
            visit_stmt(child, runs)

    def visit_stmt(node: ast.AST, runs: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, runs) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")]
            # `from planner.checks import engine_checks` imports that module, not the package's face
            found.extend((name, runs) for name in submodules or [base])
        visit(node, runs)

    visit(tree, True)
    return found


def ring_of(module: str) -> tuple[str, int] | None:
    best = None
    for prefix, ring in RINGS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, ring)
    return best


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "_data" not in p.parts}


def _planner_imports(module: str, *, running_only: bool = False) -> set[str]:
    out = set()
    for name, runs in imports_of(MODULES[module]):
        if running_only and not runs:
            continue
        while name and name not in MODULES:  # `from planner.core.search import Fit` -> planner.core.search
            name = name.rpartition(".")[0]
        if name.startswith("planner") and name != module:
            out.add(name)
    return out


def layer_violations() -> list[str]:
    problems = []
    for module, path in MODULES.items():
        home = ring_of(module)
        assert home is not None, f"{module} is in no ring: add its folder to RINGS in tests/test_layers.py"
        for name, _runs in imports_of(path):
            top = name.split(".")[0]
            where = f"{path.relative_to(PACKAGE.parent)} imports {name}"
            if top != "planner":
                if home[0] == "planner.core" and top in IO_LIBRARIES | {"sys", "pydantic"}:
                    problems.append(f"{where}: the core does no I/O and gets its tables passed in")
                in_cli = home[0] == "planner.cli" or module == "planner.__main__"
                if in_cli and top in IO_LIBRARIES - CLI_ALLOWED_IO:
                    problems.append(f"{where}: the CLI calls the api, it does no I/O of its own")
                continue
            target = ring_of(name)
            if target is None or target[0] == home[0]:
                continue
            if target[1] > home[1] and not (module == "planner" and target[0] == "planner.api"):
                problems.append(f"{where}: ring {home[1]} may not reach ring {target[1]}")
            elif target[1] == home[1] == 2 and target[0] not in EDGE_MAY_USE[home[0]]:
                problems.append(f"{where}: {home[0]} may not use {target[0]}")
            elif home[0] == "planner.cli" and target[0] not in CLI_MAY_USE and target[1] < 4:
                problems.append(f"{where}: the CLI goes through planner.api (or draws with planner.rendering)")
    return problems


def import_cycles() -> list[list[str]]:
    graph = {m: _planner_imports(m, running_only=True) for m in MODULES}
    cycles, state, stack = [], dict.fromkeys(graph, 0), []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in graph:
                continue
            if state[nxt] == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif state[nxt] == 0:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for m in sorted(graph):
        if state[m] == 0:
            walk(m)
    return cycles


def test_every_import_points_down_the_rings() -> None:
    assert layer_violations() == []


def test_no_module_imports_itself_through_others() -> None:
    # a package's __init__ importing its own submodules is how a package shows its face, not a cycle
    cycles = [c for c in import_cycles() if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))]
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        ("planner/core/search.py", "import yaml\n", "the core does no I/O"),
        ("planner/core/search.py", "def f():\n    from planner.models import sources\n", "ring 1 may not reach"),
        ("planner/rendering/artifacts.py", "from planner.serving import files\n", "may not use planner.serving"),
        ("planner/cli/plan.py", "import subprocess\n", "the CLI calls the api"),
        ("planner/types/plan.py", "from planner.core import search\n", "ring 0 may not reach ring 1"),
    ],
)
def test_the_rules_catch_a_new_violation(
    module: str, source: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker is only worth something if it fails: plant one bad import at a time and see it reported."""
    planted = source.split("import ")[-1].split()[0].strip()

    def reported() -> bool:
        return any(line.startswith(module) and planted in line and problem in line for line in layer_violations())

    assert not reported()
    monkeypatch.setitem(PLANTED, PACKAGE.parent / module, source)
    assert reported()


def test_a_new_cycle_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _planner_imports

    def with_cycle(module: str, *, running_only: bool = False) -> set[str]:
        found = real(module, running_only=running_only)
        return found | {"planner.core.planning"} if module == "planner.core.memory" else found

    monkeypatch.setattr(__import__(__name__), "_planner_imports", with_cycle)
    assert any("planner.core.memory" in c and "planner.core.planning" in c for c in import_cycles())
