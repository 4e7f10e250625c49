"""Rendering projects with cookiecutter's API: exact file set, no old names, recorded answers,
a valid DVC setup and git history; bad answers rejected before anything is written."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from construction_delays.config import parse_params
from construction_delays.sample_data import write_sample

from tests.conftest import ROOT, tool_env
from tests.template.conftest import Render, copy_template, generator, git, tracked

# Files of the template that a project never gets, and outputs its first run writes instead.
NOT_COPIED = re.compile(
    r"^(cookiecutter\.json|hooks/.*|\{\{cookiecutter\.project_slug\}\}/.*|tests/template/.*"
    r"|dvc\.lock|reports/.*)$"
)
OLD_NAME = re.compile(r"construction[\s_-]*delays?", re.IGNORECASE)
# Where an old name may stay, and why. Sample-data vocabulary ("construction activities",
# `Schedule Adherence`, `Delay (days)`) is not a project name and is not matched by OLD_NAME.
OLD_NAME_ALLOWED = {".cruft.json": "the template's own URL or path may contain its name"}
JINJA = re.compile(r"\{\{|\{%|\{#")

CUSTOM = {
    "project_name": "Overrun Days",
    "project_slug": "overrun-days",
    "module_name": "overrun",
    "description": "How many days late?",
    "author_name": "Grace Hopper",
    "author_email": "grace@example.com",
    "license": "BSD-3-Clause",
    "python_version": "3.12",
    "task_type": "regression",
    "data_path": "data/activities.csv",
    "registered_model_name": "overrun-model",
    "mlflow_tracking_uri": "https://mlflow.example.com",
}


def files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and ".git" not in p.relative_to(root).parts
    }


def expected_files(module: str) -> set[str]:
    """The template's tracked files, minus the template-only ones, with the package renamed."""
    renamed = {
        p.replace("src/construction_delays/", f"src/{module}/")
        for p in tracked()
        if not NOT_COPIED.match(p)
    }
    return renamed | {".cruft.json"}


def assert_no_leftovers(project: Path, module: str) -> None:
    """No old project name anywhere, and no template syntax the generator did not copy as is."""
    problems = []
    for relative in sorted(files(project)):
        text = (project / relative).read_text(encoding="utf-8", errors="ignore")
        if relative not in OLD_NAME_ALLOWED:
            problems += [f"{relative}: {m.group(0)!r}" for m in OLD_NAME.finditer(text)]
        origin = ROOT / relative.replace(f"src/{module}/", "src/construction_delays/")
        source_lines = set(origin.read_text().splitlines()) if origin.is_file() else set()
        problems += [
            f"{relative}: template syntax {line.strip()!r}"
            for line in text.splitlines()
            if JINJA.search(line) and line not in source_lines
        ]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render_once(tmp_path_factory, {})


@pytest.fixture(scope="module")
def custom_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    remote = tmp_path_factory.mktemp("dvc-remote")
    return _render_once(tmp_path_factory, {**CUSTOM, "dvc_remote_url": str(remote)})


def _render_once(factory: pytest.TempPathFactory, answers: dict[str, str]) -> Path:
    from cookiecutter.main import cookiecutter

    from tests.template.conftest import GIT_IDENTITY, write_config

    base = factory.mktemp("render")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in GIT_IDENTITY.items():
            patch.setenv(key, value)
        return Path(
            cookiecutter(
                str(ROOT),
                no_input=True,
                extra_context=answers,
                output_dir=str(base / "out"),
                config_file=str(write_config(base / "home")),
            )
        )


def test_default_project_has_exactly_the_template_files(default_project: Path) -> None:
    assert default_project.name == "my-mlops-project"
    assert files(default_project) == expected_files("my_mlops_project")
    assert_no_leftovers(default_project, "my_mlops_project")


def test_custom_project_has_exactly_the_template_files(custom_project: Path) -> None:
    assert custom_project.name == "overrun-days"
    assert files(custom_project) == expected_files("overrun")
    assert_no_leftovers(custom_project, "overrun")


def test_files_are_copied_byte_for_byte_apart_from_names(custom_project: Path) -> None:
    replacements = generator.name_replacements(
        generator.validate({**CUSTOM, "target_column": "Delay (days)", "dvc_remote_url": ""})
    )
    edited = {"params.yaml", "pyproject.toml", "README.md", ".dvc/config", "data.dvc", "LICENSE"}
    for relative in sorted(files(custom_project) - {".cruft.json"} - edited):
        if relative.startswith(".github/workflows/"):
            continue
        origin = ROOT / relative.replace("src/overrun/", "src/construction_delays/")
        expected = generator.rename(origin.read_text(encoding="utf-8"), replacements)
        assert (custom_project / relative).read_text(encoding="utf-8") == expected, relative
        assert (custom_project / relative).stat().st_mode == origin.stat().st_mode, relative


def test_custom_answers_land_where_the_project_reads_them(custom_project: Path) -> None:
    params = parse_params(yaml.safe_load((custom_project / "params.yaml").read_text()))
    assert (params.data.task, params.data.target, params.data.path) == (
        "regression",
        "Delay (days)",
        "data/activities.csv",
    )
    assert (params.mlflow.experiment, params.mlflow.registered_model) == (
        "overrun-days",
        "overrun-model",
    )
    pyproject = tomllib.loads((custom_project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "overrun-days"
    assert pyproject["project"]["scripts"]["mlops"] == "overrun.cli:main"
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/overrun"]
    assert pyproject["project"]["license"] == "BSD-3-Clause"
    license_file = (custom_project / "LICENSE").read_text()
    assert license_file.startswith("BSD 3-Clause License\n\nCopyright (c) ")
    assert "construction" not in license_file
    lock = (custom_project / "uv.lock").read_text()
    assert '\nname = "overrun-days"\n' in lock and "construction" not in lock
    workflows = "".join(p.read_text() for p in (custom_project / ".github/workflows").iterdir())
    assert '"3.12"' in workflows and '"3.11"' not in workflows
    readme = (custom_project / "README.md").read_text()
    assert readme.startswith("# Overrun Days\n\nHow many days late?\n")
    assert "MLFLOW_TRACKING_URI" in readme and "https://mlflow.example.com" in readme


def test_readme_does_not_present_the_project_as_a_template(default_project: Path) -> None:
    readme = (default_project / "README.md").read_text()
    for phrase in ("template repository", "this template", "use this template", "template-only"):
        assert phrase not in readme.lower(), phrase


def test_answers_are_recorded_for_cruft(custom_project: Path) -> None:
    state = json.loads((custom_project / ".cruft.json").read_text())
    assert state["template"] == str(ROOT)
    assert state["commit"] == git("rev-parse", "HEAD", cwd=ROOT).strip()
    answers = state["context"]["cookiecutter"]
    assert {k: answers[k] for k in CUSTOM} == CUSTOM
    assert answers["_commit"] == state["commit"]
    assert not any(k in answers for k in ("_repo_dir", "_output_dir", "__prompts__"))


def test_project_is_a_committed_git_repository(custom_project: Path) -> None:
    assert git("branch", "--show-current", cwd=custom_project).strip() == "main"
    assert git("status", "--porcelain", cwd=custom_project) == ""
    committed = set(git("ls-files", cwd=custom_project).split())
    assert committed == files(custom_project)


def dvc(project: Path, *args: str) -> str:
    result = subprocess.run(
        ["dvc", *args], cwd=project, env=tool_env(), text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dvc_remote_is_the_default_and_data_dvc_matches_the_renamed_sample(
    custom_project: Path, tmp_path: Path
) -> None:
    remote = json.loads((custom_project / ".cruft.json").read_text())["context"]["cookiecutter"][
        "dvc_remote_url"
    ]
    assert dvc(custom_project, "config", "core.remote") == "storage"
    assert dvc(custom_project, "remote", "list").split() == ["storage", remote, "(default)"]
    # The sample's bytes under the new name hash to what the generated data.dvc records.
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["sample"]
    sample = write_sample(tmp_path / "activities.csv", rows=params["rows"], seed=params["seed"])
    recorded = yaml.safe_load((custom_project / "data.dvc").read_text())["outs"][0]
    file_md5 = hashlib.md5(sample.read_bytes()).hexdigest()
    assert recorded["md5"] == generator.dvc_dir_md5([("activities.csv", file_md5)])


def test_default_project_has_no_dvc_remote(default_project: Path) -> None:
    assert (default_project / ".dvc" / "config").read_text() == (ROOT / ".dvc/config").read_text()
    assert (default_project / "data.dvc").read_text() == (ROOT / "data.dvc").read_text()


@pytest.mark.parametrize(
    "bad",
    [
        {"module_name": "class"},
        {"module_name": "test"},
        {"project_slug": "Not A Slug"},
        {"data_path": "elsewhere/data.csv"},
        {"dvc_remote_url": "relative/path"},
        {"task_type": "clustering"},  # a choice: cookiecutter itself refuses it
    ],
    ids=lambda bad: "-".join(f"{k}={v}" for k, v in bad.items()),
)
def test_bad_answers_are_rejected_before_anything_is_written(
    render: Render, tmp_path: Path, bad: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "rejected"
    with pytest.raises((FailedHookException, ValueError)) as error:
        render(output=output, **bad)
    assert list(output.iterdir()) == []
    assert next(iter(bad)) in capfd.readouterr().err + str(error.value)


def test_initial_commit_falls_back_to_the_author_when_git_has_no_identity(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("EMAIL", "")
    project = render(author_name="Ada Lovelace", author_email="ada@example.com")
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>"], cwd=project, text=True, capture_output=True
    ).stdout.strip()
    assert author == "Ada Lovelace <ada@example.com>"


def test_generates_from_a_relative_path_and_from_a_git_url(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = copy_template(tmp_path / "template-repo")
    commit = git("rev-parse", "HEAD", cwd=template).strip()
    monkeypatch.chdir(tmp_path)
    relative = render(template="template-repo", output=tmp_path / "a", project_name="From Path")
    from_url = render(
        template=f"git+{template.as_uri()}", output=tmp_path / "b", project_name="From URL"
    )
    for project in (relative, from_url):
        state = json.loads((project / ".cruft.json").read_text())
        assert state["commit"] == commit
        assert (project / "src" / state["context"]["cookiecutter"]["module_name"]).is_dir()
    assert json.loads((relative / ".cruft.json").read_text())["template"] == str(template)
    assert json.loads((from_url / ".cruft.json").read_text())["template"] == template.as_uri()
    assert {p.replace("from_path", "from_url") for p in files(relative)} == files(from_url)


def test_generates_from_a_directory_that_is_not_a_git_checkout(
    render: Render, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An unpacked zip of the template: the files its .gitignore does not exclude, no .cruft.json."""
    template = copy_template(tmp_path / "unpacked")
    shutil.rmtree(template / ".git")
    (template / "mlflow.db").write_text("ignored by .gitignore")
    from_git = render(output=tmp_path / "a")
    unpacked = render(template=template, output=tmp_path / "b")
    assert files(unpacked) == files(from_git) - {".cruft.json"}
    assert "no .cruft.json" in capfd.readouterr().out
