"""Rendering projects from this repository with cookiecutter, in isolated temporary directories."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT, describes_the_sample

# The template's own files, untracked until committed: a template repository built for a test
# gets them explicitly, next to what `git ls-files` lists.
TEMPLATE_FILES = (
    "cookiecutter.json",
    "hooks/_project_generator.py",
    "hooks/post_gen_project.py",
    "hooks/pre_gen_project.py",
    "{{cookiecutter.project_slug}}/.cookiecutter-placeholder",
)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(scope="session", autouse=True)
def _template_is_the_sample_project() -> None:
    """The template is this repository as shipped: once params.yaml describes other data (a
    repository started from GitHub's "Use this template", then `mlops data adopt`), it is a project,
    and these tests of generating new projects from it no longer apply."""
    import yaml

    if not describes_the_sample(yaml.safe_load((ROOT / "params.yaml").read_text())):
        pytest.skip(
            "params.yaml no longer describes the bundled sample: this repository is a project now,"
            " not the template (delete tests/template/, hooks/ and cookiecutter.json)"
        )


def load_generator() -> ModuleType:
    """hooks/_project_generator.py, imported by path as the hooks do."""
    spec = importlib.util.spec_from_file_location(
        "_project_generator", ROOT / "hooks" / "_project_generator.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generator = load_generator()


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        check=False,
        env={**os.environ, **GIT_IDENTITY},
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def tracked(root: Path = ROOT) -> list[str]:
    """What the generator copies from: the files git tracks in ``root`` that exist on disk."""
    return sorted(
        p for p in git("ls-files", "-z", cwd=root).split("\0") if p and (root / p).exists()
    )


def copy_template(destination: Path) -> Path:
    """A git repository holding this template as it is now (tracked files + the template's own)."""
    for relative in {*tracked(), *TEMPLATE_FILES}:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    (destination / "tests" / "template").mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "tests" / "template").glob("*.py"):
        shutil.copy2(path, destination / "tests" / "template" / path.name)
    git("init", "-q", "-b", "main", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-q", "-m", "template", cwd=destination)
    return destination


def write_config(directory: Path) -> Path:
    """A cookiecutter user config that keeps clones and replay files inside ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {directory / 'cookiecutters'}\nreplay_dir: {directory / 'replay'}\n"
    )
    return config


Render = Callable[..., Path]


@pytest.fixture
def render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Render:
    """Render a project with cookiecutter's API: ``render(template=ROOT, **answers)``."""
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)

    def factory(template: Path | str = ROOT, output: Path | None = None, **answers: Any) -> Path:
        from cookiecutter.main import cookiecutter

        output = output or tmp_path / "out"
        output.mkdir(parents=True, exist_ok=True)
        return Path(
            cookiecutter(
                str(template),
                no_input=True,
                extra_context=answers,
                output_dir=str(output),
                config_file=str(write_config(tmp_path / "cookiecutter-home")),
            )
        )

    return factory
