"""The serving image's Dockerfile: hadolint-clean, multi-stage, digest-pinned base (a marked
placeholder until someone with registry access fills it in), non-root, health-checked.
It cannot be built here (no Docker engine); these checks are static."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


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
