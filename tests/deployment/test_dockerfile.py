"""The serving image's Dockerfile: hadolint-clean, multi-stage, digest-pinned base (a marked
placeholder until someone with registry access fills it in), non-root, health-checked.
It cannot be built here (no Docker engine); these checks are static. `mlops image-check` (what
the main workflow runs before building) refuses the placeholders unless build-args override them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from construction_delays.deployment import base_images, check_base_images

from tests.conftest import ROOT, tool_env

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
REAL_PYTHON = f"python:3.11-slim@sha256:{'3f' * 32}"  # real-looking: any 64 hex digits but zeros
REAL_UV = f"ghcr.io/astral-sh/uv:0.13.9@sha256:{'a1' * 32}"


def instructions() -> list[str]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_hadolint_finds_nothing() -> None:
    assert HADOLINT.is_file(), f"{HADOLINT} missing: `uv sync` installs the dev group"
    result = subprocess.run(
        [str(HADOLINT), str(DOCKERFILE)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_pinned_by_digest() -> None:
    args = [line for line in instructions() if line.startswith("ARG ") and "IMAGE=" in line]
    assert args and all(re.search(r"@sha256:[0-9a-f]{64}$", line) for line in args), args
    froms = [line for line in instructions() if line.startswith("FROM ")]
    assert all(re.match(r"FROM \$\{\w+_IMAGE\}", line) for line in froms), froms
    assert "PLACEHOLDER" in DOCKERFILE.read_text(encoding="utf-8")


def test_multi_stage_locked_install_and_slim_runtime() -> None:
    lines = instructions()
    assert [line.split()[-1] for line in lines if line.startswith("FROM ")] == [
        "uv",
        "builder",
        "runtime",
    ]
    runs = " ".join(line for line in lines if line.startswith("RUN "))
    assert "uv sync --locked --no-dev" in runs
    runtime = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert not any("uv " in line for line in runtime if line.startswith("RUN "))


def test_runs_as_a_non_root_user_with_a_health_check() -> None:
    lines = instructions()
    user = [line for line in lines if line.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0] not in {"0", "root"}
    (health,) = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert "/health" in health
    assert lines[-1] == 'CMD ["mlops", "serve", "--host", "0.0.0.0", "--port", "8000"]'


def test_build_context_leaves_data_models_and_secrets_out() -> None:
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # deny by default, then allow-list
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "params.yaml", "src/"}


def image_check(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`make image-check` as CI runs it (no uv sync), with PYTHON_IMAGE / UV_IMAGE in the env."""
    clean = {k: v for k, v in tool_env().items() if k not in {"PYTHON_IMAGE", "UV_IMAGE"}}
    return subprocess.run(
        ["make", "--no-print-directory", "image-check", "RUN=", f"UV={shutil.which('true')}"],
        cwd=cwd,
        env={**clean, **env},
        text=True,
        capture_output=True,
        check=False,
    )


@pytest.fixture
def project_dockerfile(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    return tmp_path


def test_the_shipped_placeholders_fail_the_check_naming_each_arg() -> None:
    problems = check_base_images(DOCKERFILE, {})
    assert [p.split(":", 1)[0] for p in problems] == ["ARG UV_IMAGE", "ARG PYTHON_IMAGE"]
    assert all("placeholder digest" in p for p in problems)
    assert "set PYTHON_IMAGE=python:3.11-slim@sha256:<digest>" in problems[1]
    assert "docker buildx imagetools inspect python:3.11-slim" in problems[1]


def test_overrides_replace_the_placeholders_and_empty_ones_do_not() -> None:
    assert check_base_images(DOCKERFILE, {"PYTHON_IMAGE": REAL_PYTHON, "UV_IMAGE": REAL_UV}) == []
    (problem,) = check_base_images(DOCKERFILE, {"PYTHON_IMAGE": REAL_PYTHON, "UV_IMAGE": ""})
    assert problem.startswith("ARG UV_IMAGE: ghcr.io/astral-sh/uv:0.13.9@sha256:000")
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert base_images(text, {"PYTHON_IMAGE": REAL_PYTHON}) == [
        ("ARG UV_IMAGE", f"ghcr.io/astral-sh/uv:0.13.9@sha256:{'0' * 64}"),
        ("ARG PYTHON_IMAGE", REAL_PYTHON),  # builder and runtime: listed once
    ]


def test_real_digests_in_the_dockerfile_pass(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text(encoding="utf-8")
    text = re.sub(r"^ARG PYTHON_IMAGE=.*$", f"ARG PYTHON_IMAGE={REAL_PYTHON}", text, flags=re.M)
    text = re.sub(r"^ARG UV_IMAGE=.*$", f'ARG UV_IMAGE="{REAL_UV}"', text, flags=re.M)
    dockerfile.write_text(text, encoding="utf-8")
    assert check_base_images(dockerfile, {}) == []


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM python:3.11-slim\n", "FROM: python:3.11-slim is not pinned by digest"),
        ("ARG BASE\nFROM ${BASE}\n", "ARG BASE: no default and no override"),
        ("ARG BASE=python:3.11\nFROM $BASE AS b\n", "ARG BASE: python:3.11 is not pinned"),
        ("FROM ${UNDECLARED}\n", "ARG UNDECLARED: no default and no override"),
        ("ARG X=1\nRUN true\n", "no FROM instruction"),
    ],
)
def test_unpinned_or_unset_base_images_fail(tmp_path: Path, dockerfile: str, message: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile, encoding="utf-8")
    (problem,) = check_base_images(path, {"UNDECLARED": REAL_PYTHON})
    assert message in problem, problem


def test_stages_args_and_continuations_are_read_like_docker(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(
        f"# syntax=docker/dockerfile:1\nARG BASE={REAL_PYTHON}\n"
        "FROM --platform=$BUILDPLATFORM \\\n    ${BASE} AS build\n"
        "ARG BASE=python:3.11\n"  # a stage ARG: it cannot reach the next FROM line
        "FROM ${BASE} AS again\nFROM build AS test\n"
        "from scratch as final\nCOPY --from=build /x /x\n",
        encoding="utf-8",
    )
    assert base_images(path.read_text(encoding="utf-8"), {}) == [("ARG BASE", REAL_PYTHON)]
    assert check_base_images(path, {}) == []
    assert check_base_images(tmp_path / "missing", {}) == [f"{tmp_path / 'missing'}: no such file"]


def test_make_image_check_fails_on_placeholders_and_passes_with_overrides(
    project_dockerfile: Path,
) -> None:
    failed = image_check(project_dockerfile, PYTHON_IMAGE=REAL_PYTHON, UV_IMAGE="")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "ARG UV_IMAGE" in output and "placeholder digest" in output
    assert "ARG PYTHON_IMAGE" not in output
    passed = image_check(project_dockerfile, PYTHON_IMAGE=REAL_PYTHON, UV_IMAGE=REAL_UV)
    output = passed.stdout + passed.stderr
    assert passed.returncode == 0, output
    assert REAL_PYTHON in output and REAL_UV in output
