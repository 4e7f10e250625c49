"""`mlops image-tag`: the serving image is named by what it is built from, so a merge that changes
none of it (tests, docs, dvc.lock, workflows) reuses the image and production has nothing new to
approve, while any change to the image's inputs names a new one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from construction_delays.deployment import IMAGE_INPUTS, DeployError, image_tag, reuse_image

from tests.conftest import ROOT, Project, copy_from_repo, tool_env

CONTEXT_FILES = set(IMAGE_INPUTS) - {"Dockerfile", ".dockerignore"}


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    """A git repository holding this project's image inputs and some files that are not."""
    copy_from_repo(IMAGE_INPUTS, tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    assert True\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    project = Project(tmp_path)
    project.run("git", "init", "-q", "-b", "main")
    project.commit("image inputs and the rest")
    return project


def edit(project: Project, relative: str, text: str, message: str) -> str:
    path = project.root / relative
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    project.commit(message)
    return image_tag(project.root)


def test_only_the_image_inputs_name_the_image(repo: Project) -> None:
    first = image_tag(repo.root)
    assert re.fullmatch(r"build-[0-9a-f]{16}", first)
    assert image_tag(repo.root) == first  # a function of the commit

    assert edit(repo, "tests/test_x.py", "# more tests\n", "tests only") == first
    assert edit(repo, "dvc.lock", "# retrained\n", "a new model, same serving code") == first

    changed = {first}
    for relative in ("src/construction_delays/serving.py", "uv.lock", "Dockerfile", "params.yaml"):
        tag = edit(repo, relative, "\n", f"edit {relative}")
        assert tag not in changed, relative
        changed.add(tag)

    # Any commit can be named, e.g. the one a finished workflow run built.
    first_commit = repo.run("git", "rev-list", "--max-parents=0", "HEAD").stdout.strip()
    assert image_tag(repo.root, first_commit) == first


def test_build_args_that_are_set_name_another_image(repo: Project) -> None:
    plain = image_tag(repo.root)
    assert image_tag(repo.root, build_args={"PYTHON_IMAGE": "", "UV_IMAGE": ""}) == plain
    pinned = image_tag(
        repo.root, build_args={"PYTHON_IMAGE": "python:3.11-slim@sha256:" + "1" * 64}
    )
    assert pinned != plain


def test_the_cli_prints_the_tag_and_writes_the_step_output(repo: Project, tmp_path: Path) -> None:
    outputs = tmp_path / "github_output"
    shown = repo.run(
        "env", f"GITHUB_OUTPUT={outputs}", "IMAGE_REV=HEAD", "UV_IMAGE=", "mlops", "image-tag"
    )
    tag = image_tag(repo.root)
    assert shown.stdout.strip() == tag
    assert outputs.read_text() == f"tag={tag}\n"


def test_a_bad_revision_is_refused_by_name(repo: Project) -> None:
    for rev, said in (("no-such-branch", "no-such-branch"), ("--output=x", "is not a commit")):
        with pytest.raises(DeployError, match=said):
            image_tag(repo.root, rev)
    failed = repo.run("mlops", "image-tag", "--rev", "no-such-branch", check=False)
    assert failed.returncode == 2 and "no-such-branch" in failed.stderr


def test_the_inputs_are_what_docker_build_reads() -> None:
    """.dockerignore lets exactly the context files through, and the Dockerfile copies only them:
    an input missing from IMAGE_INPUTS would let two different images share a tag."""
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == CONTEXT_FILES
    assert "*" in ignore  # everything else is left out of the context
    copied: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied |= {w.rstrip("/") for w in words[1:-1]}
    assert copied and copied <= CONTEXT_FILES


# No registry runs here (no Docker engine, GitHub unreachable): a stand-in `docker` executable
# plays `docker buildx imagetools` against a JSON file of references -> digests.
FAKE_DOCKER = """#!{python}
import json, sys
from pathlib import Path

store = Path({store!r})
refs = json.loads(store.read_text())
args = sys.argv[1:]
assert args[:2] == ["buildx", "imagetools"], args
if args[2] == "inspect":
    assert args[4:] == ["--format", "{{{{.Manifest.Digest}}}}"], args
    if args[3] not in refs:
        sys.exit(f"ERROR: {{args[3]}}: not found")
    print(refs[args[3]])
elif args[2] == "create":
    *tags, source = args[3:]
    name, _, digest = source.partition("@")
    if digest not in refs.values():
        sys.exit(f"ERROR: {{source}}: not found")
    for tag in tags:
        refs[tag.removeprefix("--tag=")] = digest
    store.write_text(json.dumps(refs))
"""
NAME = "ghcr.io/acme/app"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "registry.json"
    store.write_text(json.dumps({f"{NAME}:build-0123456789abcdef": DIGEST}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, store=str(store)))
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return store


def test_an_image_of_the_same_inputs_gets_this_runs_tags_instead_of_a_rebuild(
    registry: Path, tmp_path: Path
) -> None:
    new = [f"{NAME}:build-0123456789abcdef", f"{NAME}:sha-{'1' * 40}", f"{NAME}:model-v4", ""]
    digest, why = reuse_image(NAME, "build-0123456789abcdef", new)
    assert digest == DIGEST and "reusing" in why
    refs = json.loads(registry.read_text())
    assert refs[f"{NAME}:sha-{'1' * 40}"] == refs[f"{NAME}:model-v4"] == DIGEST

    outputs = tmp_path / "github_output"
    env = {"GITHUB_OUTPUT": str(outputs), "IMAGE_NAME": NAME, "IMAGE_TAG": "build-ffffffffffffffff"}
    shown = subprocess.run(
        ["mlops", "image-reuse"],
        cwd=tmp_path,
        env=tool_env() | env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert outputs.read_text() == "digest=\n"  # none of those inputs yet: the next step builds
    assert "no image ghcr.io/acme/app:build-ffffffffffffffff to reuse" in shown.stderr
    assert "not found" in shown.stderr


def test_reuse_refuses_what_is_not_an_image_reference(registry: Path) -> None:
    for name, tag, new, said in (
        ("GHCR.io/Acme", "build-1", [], "image name"),
        (NAME, "bad tag", [], "image tag 'bad tag'"),
        (NAME, "build-1", ["ghcr.io/other/app:x"], "not tags of ghcr.io/acme/app"),
        (NAME, "build-1", [f"{NAME}:-x"], "image tag '-x'"),
    ):
        with pytest.raises(DeployError, match=said):
            reuse_image(name, tag, new)
    with pytest.raises(DeployError, match="'no-docker' is not on PATH"):
        reuse_image(NAME, "build-1", [], docker="no-docker")
