"""The code's shape: one import package, and dependencies that point one way.

    mlflow_lambda.handler   the runtime copied into every bundle (relative imports only)
            ^
    mlflow_lambda.packager  build time: resolve ... publish, and what ``package`` writes
            ^
    mlflow_lambda.infra     local runs, deploy, the MLflow plugin
            ^
    mlflow_lambda.infra.cli the command line, on top of everything

Every import of every module is read from its AST (imports inside ``if TYPE_CHECKING:``
aside, since they never run), lazy imports inside functions included.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "mlflow_lambda"
FOLDERS = ("handler", "packager", "infra")
CLI = f"{PACKAGE}.infra.cli"
BARE = {"handler", "packager", "infra"}


def _layer(module: str) -> int:
    if module == CLI or module.startswith(CLI + "."):
        return 3
    return FOLDERS.index(module.split(".")[1])


def _modules() -> dict[str, Path]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([PACKAGE, *parts])] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    walk(orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            walk(child)

    walk(tree)
    return found


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute module names one import statement reaches."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    # ``from pkg import name``: a submodule when there is one, else a name in ``pkg``
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
        for alias in node.names
    ]


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _import_nodes(tree):
            for target in _targets(module, path, node):
                if target.startswith(PACKAGE + ".") and target != module:
                    edges[module].add(target)
    return edges


def test_every_file_is_a_module_of_our_one_package() -> None:
    assert {m.split(".")[1] for m in MODULES} == set(FOLDERS)
    assert f"{PACKAGE}.handler.lambda_function" in MODULES
    assert CLI in MODULES


@pytest.mark.parametrize("folder", ["handler", "packager", "infra", "tests", "bench"])
def test_nothing_imports_a_folder_by_its_bare_name(folder: str) -> None:
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if not node.level
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {n}"
                for n in names
                if n.split(".")[0] in BARE
            ]
    assert offenders == []


def test_the_runtime_imports_itself_relatively_only() -> None:
    """The bundle carries the runtime under the same name, but a relative import cannot
    be redirected by anything on ``sys.path``."""
    offenders = []
    for module, path in MODULES.items():
        if _layer(module) != 0:
            continue
        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            absolute = isinstance(node, ast.ImportFrom) and not node.level
            names = [node.module or ""] if absolute else []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{module}:{node.lineno}" for n in names if n.startswith(PACKAGE)]
    assert offenders == []


def test_dependencies_point_one_way() -> None:
    against = [
        f"{source} -> {target}"
        for source, targets in _edges().items()
        for target in targets
        if _layer(target) > _layer(source)
    ]
    assert against == []


def test_no_import_cycle_between_modules() -> None:
    graphlib.TopologicalSorter(_edges()).prepare()  # raises CycleError naming the cycle


def test_the_checks_see_a_cycle_and_an_import_against_the_direction() -> None:
    """The two tests above can fail: the same helpers flag a made-up violation."""
    edges = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(edges).prepare()
    tree = ast.parse("from ..packager.build import build\nfrom ..infra import cli\n")
    path = ROOT / "handler" / "app.py"
    targets = [t for n in _import_nodes(tree) for t in _targets(f"{PACKAGE}.handler.app", path, n)]
    assert targets == [f"{PACKAGE}.packager.build", CLI]
    assert [_layer(t) for t in targets] == [1, 3]


def test_no_two_exception_classes_share_a_name() -> None:
    """One error tree each for the tool and the runtime, and no name that shadows another
    (ours or the libraries' we raise through, such as MLflow's ``MlflowException``)."""
    names: list[str] = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")))
                or (isinstance(b, ast.Attribute) and b.attr.endswith(("Error", "Exception")))
                for b in node.bases
            ):
                names.append(node.name)
    assert len(names) >= 20  # both trees were found
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert not {"MlflowException", "ClickException", "ValueError"} & set(names)
