"""Batch jobs (`mlops run`, the stage scripts) run with Python's cyclic garbage collector paused."""

from __future__ import annotations

import ast
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from construction_delays.batch import collector_paused

from tests.conftest import ROOT, classification_reference, tool_env

STAGE_SCRIPTS = sorted((ROOT / "pipelines").glob("*.py"))

# Runs in a fresh interpreter: the split stage's main() as DVC calls it, then its undecorated body;
# each time, the collector's state and the collections it starts while the stage's work runs.
PROBE = """
import gc, json, runpy, sys
from pathlib import Path

from construction_delays import stages
from construction_delays.sample_data import write_sample

script, work, params = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
data = write_sample(work / "data.csv", rows=2000, seed=3)
stage = runpy.run_path(str(script), run_name="stage")  # module-level imports done here
collections, seen = [], {}
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
split = stages.split

def observed_split(*args):
    before = len(collections)
    seen["enabled"] = gc.isenabled()
    split(*args)
    seen["collections"] = len(collections) - before

stages.split = observed_split
gc.set_threshold(50)  # so the control's few allocations surely trigger collections

def run(main, out):
    sys.argv = [str(script), "--params", params, "--data", str(data), "--out", str(work / out)]
    main()
    return dict(seen)

result = {"paused": run(stage["main"], "paused"), "enabled_after": gc.isenabled()}
result["unpaused"] = run(stage["main"].__wrapped__.__wrapped__, "unpaused")  # under @reported
print(json.dumps(result))
"""


def test_collector_is_paused_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the outermost decides
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()

    with pytest.raises(RuntimeError, match="stage failed"), collector_paused():
        raise RuntimeError("stage failed")
    assert gc.isenabled()


def test_a_collector_paused_by_the_caller_stays_paused() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_split_stage_runs_without_collections_and_leaves_the_collector_on(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"  # the bundled sample's task, in a generated project too
    params.write_text(yaml.safe_dump(classification_reference()))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ROOT / "pipelines" / "split.py", tmp_path, params],
        cwd=tmp_path,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])

    assert counts["paused"] == {"enabled": False, "collections": 0}
    assert counts["enabled_after"] is True
    # The control: the same work with the collector on does collect.
    assert counts["unpaused"]["enabled"] is True
    assert counts["unpaused"]["collections"] > 0
    assert (tmp_path / "paused" / "train.parquet").is_file()


@pytest.mark.parametrize("script", STAGE_SCRIPTS, ids=lambda path: path.stem)
def test_every_stage_entry_point_pauses_the_collector(script: Path) -> None:
    """`dvc repro` runs each stage as its own `python pipelines/<stage>.py` process."""
    tree = ast.parse(script.read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")

    decorators = [ast.unparse(d) for d in main.decorator_list]

    assert decorators == ["reported", "collector_paused()"]


def test_mlops_run_pauses_the_collector_around_the_whole_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pipeline itself runs for real in tests/pipeline; here only what surrounds it."""
    from typer.testing import CliRunner

    from construction_delays import cli

    collector_on_during_run: list[bool] = []
    monkeypatch.setattr(
        cli, "run_pipeline", lambda *args: collector_on_during_run.append(gc.isenabled())
    )

    result = CliRunner().invoke(cli.app, ["run", "--no-register"])

    assert result.exit_code == 0, result.output
    assert collector_on_during_run == [False]
    assert gc.isenabled()
