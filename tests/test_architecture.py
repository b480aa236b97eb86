"""Structural rules of the package, checked on its source.

No import cycle between the package's modules (every ``import``/``from`` in a
module's body, ``TYPE_CHECKING`` blocks included, since a cycle for the type checker
is the same coupling), and no ``__aenter__``/``__aexit__`` called by hand: resources
that own tasks or sockets are entered with ``async with`` or an ``AsyncExitStack``
(a class's ``__aexit__`` handing over to its own exit stack is that stack's API).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "relay_anyio"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("relay_anyio")}


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {
        _module_name(p): {m for m in _imports(p) if m in modules and m != _module_name(p)}
        for p in paths
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None. Package ``__init__`` modules re-export their
    submodules by design: an edge into a package's own ``__init__`` from inside it
    is not followed."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + ".") or target.startswith(node + "."):
                continue  # a package and its own submodules
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _part(graph: dict[str, set[str]], testing: bool) -> dict[str, set[str]]:
    def inside(name: str) -> bool:
        return name.startswith("relay_anyio.testing") == testing

    return {m: {t for t in targets if inside(t)} for m, targets in graph.items() if inside(m)}


def test_the_sdk_has_no_import_cycle() -> None:
    graph = _part(_graph(), testing=False)
    assert graph.get("relay_anyio._call")  # the walk sees edges
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_fake_server_has_no_import_cycle() -> None:
    graph = _part(_graph(), testing=True)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_async_context_is_entered_by_hand() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("__aenter__", "__aexit__")
                and not (
                    isinstance(node.func.value, ast.Name)  # an exit stack's own API
                    and node.func.value.id.endswith("stack")
                )
            ):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


def test_the_sdk_never_imports_the_testing_tier() -> None:
    """The fake server ships beside the SDK, not inside it: nothing a user's worker
    imports pulls it in. The CLI is the one door (``relay-anyio demo``/``serve``), and
    it imports the tier lazily, inside the commands that need it."""
    graph = _graph()
    leaks = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if not module.startswith("relay_anyio.testing") and module != "relay_anyio._cli"
        for target in targets
        if target.startswith("relay_anyio.testing")
    )
    assert leaks == []
    cli = ast.parse((PACKAGE / "_cli.py").read_text())
    top_level = [
        node
        for node in cli.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("testing")
    ]
    assert top_level == [], "the CLI must import the testing tier inside its commands"
