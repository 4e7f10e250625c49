"""DVC inside this interpreter: `mlops run` reproduces the pipeline with no process per stage.

`dvc repro` starts a fresh Python for every stage, and on a small dataset that start-up (imports of
pandas, scikit-learn, MLflow; loky workers spawned anew; process exit) costs more than the training.
Here DVC itself runs in this process (`dvc.cli.main`, the same code as the `dvc` command) and a
stage whose command is `python pipelines/<script>.py ...` runs in this process too, through runpy,
exactly as `python` would run it. DVC still decides what is stale, restores from its run-cache,
hashes and caches the outputs and writes dvc.lock, so the result is what `dvc repro` records (the
tests check that `dvc status` is clean afterwards). Any other command (a shell line, another
interpreter, a script outside pipelines/) runs as a subprocess, as DVC would run it.

Stage scripts share the process, so they must not leave state behind (they close their figures,
end their MLflow runs); the loky worker pool is deliberately shared, so workers start once.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import runpy
import shlex
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

STAGE_SCRIPTS_DIR = "pipelines"
# Anything that makes a command line more than "interpreter + script + arguments".
SHELL_SYNTAX = frozenset({"&&", "||", "|", ";", ">", ">>", "<", "&", "2>", "2>&1"})
DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")


def tool_env() -> dict[str, str]:
    """Environment for DVC and stage subprocesses: this interpreter's bin dir first, no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def stage_script_argv(command: str, cwd: str | os.PathLike[str]) -> list[str] | None:
    """``[script, *args]`` when ``command`` is ``python <repo>/pipelines/<x>.py args``, else None."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) < 2 or words[0] not in {"python", "python3"}:
        return None
    if any(word in SHELL_SYNTAX or "$" in word or "`" in word for word in words):
        return None
    script = Path(cwd, words[1]).resolve()
    scripts_dir = Path(cwd, STAGE_SCRIPTS_DIR).resolve()
    if script.suffix != ".py" or script.parent != scripts_dir or not script.is_file():
        return None
    return [str(script), *words[2:]]


def run_stage_script(argv: list[str], cwd: str | os.PathLike[str]) -> int:
    """Run a stage script as ``python`` would (``__name__ == "__main__"``); return its exit code."""
    saved_argv, saved_cwd = sys.argv, Path.cwd()
    sys.argv = list(argv)
    os.chdir(cwd)
    try:
        runpy.run_path(argv[0], run_name="__main__")
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except Exception:  # a crash fails the stage, as it would fail a process
        traceback.print_exc()
        return 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        sys.stdout.flush()
        sys.stderr.flush()


StageHook = Callable[[list[str]], None]


@contextmanager
def stage_scripts_in_process(before_stage: StageHook | None = None) -> Iterator[None]:
    """While active, DVC runs ``python pipelines/*.py`` stage commands in this process.

    ``before_stage`` is called with each such stage's ``[script, *args]`` before it runs.
    """
    import dvc.stage.run as dvc_stage_run
    from dvc.stage.exceptions import StageCmdFailedError

    run_in_subprocess = dvc_stage_run._run

    def run_command(executable: str | None, cmd: str, **kwargs: Any) -> None:
        cwd = kwargs.get("cwd") or Path.cwd()
        argv = stage_script_argv(cmd, cwd)
        if argv is None:
            run_in_subprocess(executable, cmd, **kwargs)
            return
        if before_stage is not None:
            before_stage(argv)
        code = run_stage_script(argv, cwd)
        if code != 0:
            raise StageCmdFailedError(cmd, code)

    dvc_stage_run._run = run_command
    try:
        yield
    finally:
        dvc_stage_run._run = run_in_subprocess


@contextmanager
def _dvc_output_to(out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    """Point DVC's log handlers (bound to the streams at import time) and stdio at buffers."""
    handlers = {h for name in DVC_LOGGERS for h in logging.getLogger(name).handlers}
    saved = {}
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler):
            saved[handler] = handler.stream
            handler.setStream(err if handler.level >= logging.WARNING else out)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            yield
    finally:
        for handler, stream in saved.items():
            handler.setStream(stream)


@contextmanager
def _tool_environment() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(tool_env())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def dvc(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """``dvc <args>`` in this process; same result shape as :func:`subprocess.run`.

    ``check`` raises :class:`DvcCommandError` on a non-zero exit; ``capture`` collects the output
    (stdout, stderr) instead of printing it.
    """
    from dvc.cli import main as dvc_main

    out, err = io.StringIO(), io.StringIO()
    with _tool_environment():
        if capture:
            with _dvc_output_to(out, err):
                code = dvc_main(list(args))
        else:
            code = dvc_main(list(args))
    sys.stdout.flush()
    result = subprocess.CompletedProcess(["dvc", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        from construction_delays.errors import ProjectError

        detail = (result.stderr or result.stdout).strip() if capture else ""
        raise ProjectError(f"`dvc {' '.join(args)}` failed (exit {code}) {detail}".strip())
    return result


@contextmanager
def yaml_parsed_once() -> Iterator[None]:
    """While active, DVC parses each distinct YAML text once.

    A repro re-reads params.yaml for every parameter dependency of every stage it checks: ~60
    ruamel parses costing over a second. Keyed by the text itself, so an edited file is parsed
    again; every caller gets its own deep copy to mutate. Round-trip parses (``typ="rt"``, for
    rewriting dvc.lock) are left alone: their text changes with every stage anyway.
    """
    import dvc.utils.serialize._yaml as dvc_yaml

    parse = dvc_yaml.parse_yaml
    parsed: dict[str, Any] = {}

    def parse_once(text: str, path: Any, typ: str = "safe") -> Any:
        if typ != "safe":
            return parse(text, path, typ=typ)
        if text not in parsed:
            parsed[text] = parse(text, path, typ=typ)
        return copy.deepcopy(parsed[text])

    dvc_yaml.parse_yaml = parse_once
    try:
        yield
    finally:
        dvc_yaml.parse_yaml = parse


def repro(*args: str, before_stage: StageHook | None = None) -> int:
    """``dvc repro <args>`` with ``python pipelines/*.py`` stages run in this process."""
    with stage_scripts_in_process(before_stage), yaml_parsed_once():
        return dvc("repro", *args, check=False).returncode
