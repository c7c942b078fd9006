"""The house's shape: packages depend one way, no module imports another in a cycle, and no module imports an
entry point (a module with a `main()`): what two jobs share lives in a library module of their stage."""

import ast
from collections import defaultdict

from tests.helpers import REPO

# Each package may import only the packages listed for it (and itself).
ALLOWED = {
    "common": set(),
    "training": {"common"},
    "scoring": {"common"},
    "registry": {"common", "training", "scoring"},
    "lifecycle": {"common", "training", "scoring", "registry"},  # the quickstart, above every stage
    "monitoring": {"common", "training", "scoring", "registry", "lifecycle"},
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for package in ALLOWED:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text())
    return found


def _imports(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    edges = defaultdict(set)
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _entry_points(modules: dict[str, ast.Module]) -> set[str]:
    return {
        name
        for name, tree in modules.items()
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)
    }


def test_packages_depend_one_way():
    wrong = sorted(
        f"{source} imports {target}"
        for source, targets in _imports(_modules()).items()
        for target in targets
        if target.split(".")[0] != source.split(".")[0] and target.split(".")[0] not in ALLOWED[source.split(".")[0]]
    )
    assert wrong == []


def test_no_module_imports_another_in_a_cycle():
    edges = _imports(_modules())
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_nothing_but_the_quickstart_imports_an_entry_point():
    modules = _modules()
    entry_points = _entry_points(modules)
    importers = sorted(
        f"{source} imports {target}"
        for source, targets in _imports(modules).items()
        for target in targets & entry_points
        if source != "lifecycle.main"
    )
    assert importers == []


def test_no_private_module_is_imported_from_another_package():
    """A `_module` is its package's own business; what another package needs is a public module (e.g. `executor`)."""
    wrong = sorted(
        f"{source} imports {target}"
        for source, targets in _imports(_modules()).items()
        for target in targets
        if target.rsplit(".", 1)[-1].startswith("_") and target.rsplit(".", 1)[0] != source.rsplit(".", 1)[0]
    )
    assert wrong == []
