"""dvc.yaml names, for every stage, each library module its code imports, directly or not.

DVC reruns a stage only when a listed dependency changes: a module missing from the list is an
edit (a new metric, another way to read the data) that `dvc repro` silently skips, leaving results
the code no longer produces. Imports are read from the source (also those inside functions, so the
list may hold a module a stage never calls: a needless rerun is safe, a missed one is not).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGE_DIR = next((ROOT / "src").glob("*/__init__.py")).parent
PACKAGE = PACKAGE_DIR.name
# What a stage prints, how it fails and how its process runs, not what it writes.
NOT_RESULTS = {"batch", "console", "errors"}
# Imported only inside functions the stage never runs: monitoring's `mlops monitor` code loads a
# model (scoring) and opens the MLflow store (tracking); evaluate uses only its profile builder.
NEVER_RUN_BY = {"evaluate": {"scoring", "tracking"}}


def imported_modules(tree: ast.AST) -> set[str]:
    """The package's modules that ``tree`` imports anywhere (``from pkg import mod`` included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            found |= {a.name for a in node.names if (PACKAGE_DIR / f"{a.name}.py").is_file()}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{PACKAGE}."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(f"{PACKAGE}.")}
    return found


def parsed(module: str) -> ast.Module:
    return ast.parse((PACKAGE_DIR / f"{module}.py").read_text(encoding="utf-8"))


def stage_function_imports(script: ast.Module) -> set[str]:
    """`stages` holds one function per stage: only the module-level imports of stages.py and
    those of the functions the script calls (and the helpers they call) count."""
    source = parsed("stages")
    functions = {n.name: n for n in source.body if isinstance(n, ast.FunctionDef)}
    called = {
        node.attr
        for node in ast.walk(script)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "stages"
    }
    called |= {
        node.func.id
        for name in list(called & functions.keys())
        for node in ast.walk(functions[name])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    top_level = [n for n in source.body if isinstance(n, ast.Import | ast.ImportFrom)]
    found = imported_modules(ast.Module(body=top_level, type_ignores=[]))
    for name in called & functions.keys():
        found |= imported_modules(functions[name])
    return found


def code_of(script_path: Path) -> set[str]:
    script = ast.parse(script_path.read_text(encoding="utf-8"))
    direct = imported_modules(script)
    pending = list(direct - {"stages"})
    if "stages" in direct:
        pending += stage_function_imports(script)
    seen = {"stages"} & direct
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending += imported_modules(parsed(module))
    return seen - NOT_RESULTS


def stage_deps() -> dict[str, tuple[Path, set[str]]]:
    """Stage name -> (its pipelines/ script, the deps dvc.yaml lists)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    found = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)  # foreach stages keep their definition under `do`
        script = next(w for w in body["cmd"].split() if w.startswith("pipelines/"))
        found[name] = (ROOT / script, set(body.get("deps", [])))
    return found


@pytest.mark.parametrize("stage", list(stage_deps()))
def test_every_module_a_stage_imports_is_one_of_its_deps(stage: str) -> None:
    script, deps = stage_deps()[stage]
    modules = code_of(script) - NEVER_RUN_BY.get(stage, set())
    wanted = {f"src/{PACKAGE}/{module}.py" for module in modules}
    assert f"pipelines/{script.name}" in deps
    assert not wanted - deps, f"add to dvc.yaml stage {stage!r} deps: {sorted(wanted - deps)}"


def test_the_import_reader_follows_functions_and_stages() -> None:
    """The reader itself: the train stage reaches training (imported inside stages.train) and
    what training imports; validate does not reach training."""
    train, _ = stage_deps()["train"]
    validate, _ = stage_deps()["validate"]
    assert {"stages", "training", "models", "features", "config"} <= code_of(train)
    assert "training" not in code_of(validate)
