"""The package's layering holds: no import cycles, no import up a layer, and the surgery alone
imports without the training stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gan_adapters"

LAYERS = {
    "gan_adapters.errors": 0,
    "gan_adapters.faults": 0,
    "gan_adapters.files": 1,
    "gan_adapters.pretrained": 1,
    "gan_adapters.serial": 2,
    "gan_adapters.settings": 2,
    "gan_adapters.modules": 2,
    "gan_adapters.images": 2,
    "gan_adapters.surgery": 3,
    "gan_adapters.generators": 4,
    "gan_adapters.training": 5,
    "gan_adapters.pretraining": 5,
    "gan_adapters.adapted": 5,
    "gan_adapters": 6,
    "gan_adapters.evaluation": 7,
    "gan_adapters.cli": 8,
    "gan_adapters.__main__": 9,
}
"""Each module's layer (the longest matching prefix); a module may import only from layers at or below
its own, and the package root (the public API) sits above training and below evaluation and the CLI."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (PACKAGE.parent / relative).is_dir()


def imports_of(path: Path) -> set[str]:
    """Every gan_adapters module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gan_adapters")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_adapters"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if is_module(child) else node.module)
    return found


def layer(name: str) -> int:
    prefix = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_import_goes_down_or_sideways_a_layer():
    upward = [
        f"{importer} (layer {layer(importer)}) imports {imported} (layer {layer(imported)})"
        for importer, imported_set in import_graph().items()
        for imported in imported_set
        if layer(imported) > layer(importer)
    ]
    assert not upward, "imports that go up a layer:\n" + "\n".join(sorted(upward))


def test_the_surgery_is_used_through_its_surface():
    """Outside surgery/, modules import from `gan_adapters.surgery` (its __init__ declares the
    surface), never from one of its submodules."""
    reaching_in = []
    for path in PACKAGE.rglob("*.py"):
        if module_name(path).startswith("gan_adapters.surgery"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            named += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            reaching_in += [
                f"{module_name(path)}: {n}" for n in named if n.startswith("gan_adapters.surgery.")
            ]
    assert not reaching_in, "imports of surgery internals:\n" + "\n".join(sorted(reaching_in))


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of a directed graph, each as the list of its nodes (first repeated at the end)."""
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt == node or nxt not in edges:
                continue
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return cycles


def test_no_import_cycles():
    graph = import_graph()
    # A package imports its own submodules to register them; that is the package, not a cycle.
    edges = {
        m: {i for i in deps if not (m != "gan_adapters" and i.startswith(m + "."))}
        for m, deps in graph.items()
    }
    cycles = find_cycles(edges)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]], "the check sees one"


def test_the_layering_check_sees_an_upward_import(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from gan_adapters.training.trainer import train\n")
    assert imports_of(source) == {"gan_adapters.training.trainer"}
    assert layer("gan_adapters.training.trainer") > layer("gan_adapters.surgery.inject")


def test_the_surgery_imports_without_the_training_stack():
    code = (
        "import sys, gan_adapters; gan_adapters.inject; gan_adapters.summary; gan_adapters.save_adapters\n"
        "heavy = ('accelerate', 'typer', 'rich', 'matplotlib', 'torch._dynamo')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "gan_adapters.train\n"
        "assert 'accelerate' in sys.modules, 'train is there on first use'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_no_module_over_300_lines():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert not long, f"modules over ~300 lines: {long}"


def test_no_function_over_60_lines_without_a_reason():
    """A function may run longer only with a comment `# long: <reason>` on its first line."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.end_lineno - node.lineno >= 60
            ) and "# long:" not in lines[node.lineno - 1]:
                long.append(f"{module_name(path)}.{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, f"functions over ~60 lines: {long}"
