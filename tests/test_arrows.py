"""Who may import whom (../shared/DESIGN.md, Layout): every module's imports, those inside
functions included, walked with `ast`; a wrong arrow or an import cycle fails here.

The graph is over the project's modules: `from pkg import name` counts as an import of
the submodule `pkg.name` where one exists, else of `pkg` itself (its __init__).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "pipelines", "controls", "trt_builds", "web", "demon", "bench", "tests")
EVERYTHING = frozenset(PACKAGES)
# what each top-level package may import of the project, besides itself
ALLOWED = {
    "engine": frozenset(),
    "pipelines": frozenset({"engine", "trt_builds"}),
    "controls": frozenset({"engine"}),
    "trt_builds": frozenset({"engine"}),
    "web": frozenset({"engine", "controls"}),
    "demon": EVERYTHING,  # the composition root
    "bench": EVERYTHING,
    "tests": EVERYTHING,
}


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (a package is its __init__)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement reaches (relative ones resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = here[: len(here) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in its body."""
    files = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = _imported(node, module, is_package)
            if isinstance(node, ast.ImportFrom):  # `from pkg import sub` imports pkg.sub where it is a module
                target, members = names[0], names[1:]
                subs = [m for m in members if m in files]
                edges.update(subs if len(subs) == len(members) else subs + [target])
            else:
                edges.update(names)
        graph[module] = {name for name in edges if name in files and name != module}
    return graph


def wrong_arrows(graph: dict[str, set[str]]) -> list[str]:
    """'a.b -> c.d' for every import that the layout forbids."""
    bad = []
    for module, targets in sorted(graph.items()):
        top = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != top and other not in ALLOWED.get(top, frozenset()):
                bad.append(f"{module} -> {target}")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(start: str) -> None:  # iterative, so a deep graph cannot hit the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_project_imports_only_along_the_arrows():
    graph = import_graph(ROOT)
    assert len(graph) > 50 and "engine.state" in graph["engine"]  # the walk sees the project
    assert wrong_arrows(graph) == []


def test_the_project_has_no_import_cycle():
    assert cycles(import_graph(ROOT)) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_a_wrong_arrow_and_a_cycle_hidden_in_functions(tmp_path):
    _write(tmp_path, {
        "engine/__init__.py": "from .core import run\n",
        "engine/core.py": "def run():\n    from pipelines.a import thing  # engine must import nothing of the project\n",
        "pipelines/__init__.py": "",
        "pipelines/a.py": "def thing():\n    from .b import other\n",
        "pipelines/b.py": "from . import a\nother = 1\n",
        "controls/__init__.py": "",
        "controls/knob.py": "import pipelines.b\n",
        "web/__init__.py": "",
        "web/page.py": "from controls import knob\nfrom engine import run\n",
    })
    graph = import_graph(tmp_path, ("engine", "pipelines", "controls", "web"))
    assert graph["web.page"] == {"controls.knob", "engine"}
    assert wrong_arrows(graph) == ["controls.knob -> pipelines.b", "engine.core -> pipelines.a"]
    assert cycles(graph) == [["pipelines.a", "pipelines.b"]]
