"""DVC run inside the test process: which stage commands run in-process, and that DVC records them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from construction_delays import dvc_in_process

from tests.conftest import tool_env


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python pipelines/stage.py --out x", ["stage.py", "--out", "x"]),
        ("python3 pipelines/stage.py 'a b'", ["stage.py", "a b"]),
        ("python pipelines/stage.py > log.txt", None),  # a redirect needs the shell
        ("python pipelines/stage.py && echo done", None),
        ("python pipelines/stage.py --home $HOME", None),  # the shell would expand it
        ("python -m pipelines.stage", None),
        ("python elsewhere/stage.py", None),  # only the project's stage scripts
        ("python pipelines/missing.py", None),
        ("python pipelines/notes.txt", None),
        ("Rscript pipelines/stage.py", None),
        ("python 'unbalanced", None),
    ],
)
def test_only_plain_stage_script_commands_run_in_process(
    tmp_path: Path, command: str, expected: list[str] | None
) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "stage.py").write_text("")
    (tmp_path / "pipelines" / "notes.txt").write_text("")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "stage.py").write_text("")

    argv = dvc_in_process.stage_script_argv(command, tmp_path)

    if expected is None:
        assert argv is None
    else:
        assert argv is not None
        assert argv == [str(tmp_path / "pipelines" / expected[0]), *expected[1:]]


STAGE_SCRIPT = """\
import os, sys
from pathlib import Path
out = Path(sys.argv[1])
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"{os.getpid()} {__name__} {Path.cwd()}")
if len(sys.argv) > 2:
    sys.exit(sys.argv[2] if not sys.argv[2].isdigit() else int(sys.argv[2]))
"""


@pytest.fixture
def dvc_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git + DVC repo with a Python stage script and a shell stage."""
    env = tool_env()
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(args, cwd=tmp_path, env=env, check=True)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "write.py").write_text(STAGE_SCRIPT)
    stages = {
        "python_stage": {
            "cmd": "python pipelines/write.py out/python.txt",
            "deps": ["pipelines/write.py"],
            "outs": ["out/python.txt"],
        },
        "shell_stage": {
            "cmd": "echo $0 > out/shell.txt",
            "deps": ["out/python.txt"],
            "outs": ["out/shell.txt"],
        },
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_repro_runs_stage_scripts_in_this_process_and_records_them(dvc_project: Path) -> None:
    argv, cwd = list(sys.argv), Path.cwd()

    assert dvc_in_process.repro() == 0

    pid, name, stage_cwd = (dvc_project / "out/python.txt").read_text().split(" ", 2)
    assert int(pid) == os.getpid()  # no new interpreter
    assert name == "__main__"  # run as a script, as `python` would
    assert Path(stage_cwd) == dvc_project
    assert (dvc_project / "out/shell.txt").read_text().strip()  # the shell stage ran in a shell
    assert (sys.argv, Path.cwd()) == (argv, cwd)
    # DVC recorded both stages: a separate `dvc status` process finds nothing to do.
    status = subprocess.run(
        ["dvc", "status"], cwd=dvc_project, env=tool_env(), text=True, capture_output=True
    )
    assert status.returncode == 0
    assert "up to date" in status.stdout
    assert dvc_in_process.repro() == 0  # and nothing reruns: the output is untouched
    assert (dvc_project / "out/python.txt").read_text().startswith(pid)


@pytest.mark.parametrize("exit_with", ["3", "the stage says why"])
def test_a_failing_stage_script_fails_repro_without_ending_this_process(
    dvc_project: Path, exit_with: str
) -> None:
    dvc_file = dvc_project / "dvc.yaml"
    stages = yaml.safe_load(dvc_file.read_text())
    stages["stages"]["python_stage"]["cmd"] += f" '{exit_with}'"
    dvc_file.write_text(yaml.safe_dump(stages))

    assert dvc_in_process.repro() != 0

    assert not (dvc_project / "dvc.lock").exists()  # nothing recorded for the failed stage
    assert not (dvc_project / "out/shell.txt").exists()  # and the stage after it did not run


def test_captured_dvc_output_is_returned_not_printed(
    dvc_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = dvc_in_process.dvc("status", capture=True)
    assert result.returncode == 0
    assert "python_stage" in result.stdout
    assert capsys.readouterr().out == ""

    failed = dvc_in_process.dvc("checkout", "no-such-target", check=False, capture=True)
    assert failed.returncode != 0
    assert "no-such-target" in failed.stderr
    assert capsys.readouterr().err == ""


def test_yaml_parsed_once_parses_each_text_once_and_hands_out_copies(tmp_path: Path) -> None:
    import dvc.utils.serialize._yaml as dvc_yaml
    from dvc.utils.serialize import load_yaml

    real_parse = dvc_yaml.parse_yaml
    parsed_texts: list[str] = []

    def counting_parse(text: str, path: object, typ: str = "safe") -> object:
        parsed_texts.append(text)
        return real_parse(text, path, typ=typ)

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  grid: {C: [1, 10]}\n", encoding="utf-8")
    dvc_yaml.parse_yaml = counting_parse
    try:
        with dvc_in_process.yaml_parsed_once():
            first = load_yaml(params)
            first["train"]["grid"]["C"].append(100)  # a caller mutating its copy
            second = load_yaml(params)
            assert second == {"train": {"grid": {"C": [1, 10]}}}
            assert len(parsed_texts) == 1

            params.write_text("train:\n  grid: {C: [5]}\n", encoding="utf-8")
            assert load_yaml(params) == {"train": {"grid": {"C": [5]}}}
            assert len(parsed_texts) == 2
        assert dvc_yaml.parse_yaml is counting_parse  # restored on the way out
    finally:
        dvc_yaml.parse_yaml = real_parse
