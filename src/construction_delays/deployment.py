"""Deployment is a commit: the kustomize overlays under ``deploy/overlays/<env>/`` say which image
and which model version run where, and a GitOps controller (Argo CD, Flux) applies them.

``mlops deploy`` rewrites only the overlay lines marked ``# mlops:<key>`` (text edits, so comments
and layout stay as people wrote them) and can commit the result; ``mlops rollback`` moves the
registry's ``champion`` back and commits the manifests in one commit; ``mlops smoke`` checks a
deployed endpoint.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from construction_delays.config import Params
from construction_delays.errors import ProjectError

OVERLAYS_DIR = Path("deploy/overlays")
KUSTOMIZATION = "kustomization.yaml"
ENVIRONMENTS = ("staging", "production")
MARKED_LINE = re.compile(
    r"^(?P<head>\s*(?:-\s+)?(?:[\w./-]+:\s+|[A-Z][A-Z0-9_]*=))(?P<value>.*?)"
    r"(?P<tail>\s+#\s*mlops:(?P<key>[a-z-]+).*)$"
)
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class DeployError(ProjectError, RuntimeError):
    pass


def overlay_path(root: Path, env: str) -> Path:
    """The kustomization file of an environment's overlay (DeployError if there is none)."""
    path = root / OVERLAYS_DIR / env / KUSTOMIZATION
    if not path.is_file():
        known = sorted(p.parent.name for p in (root / OVERLAYS_DIR).glob(f"*/{KUSTOMIZATION}"))
        raise DeployError(f"{path}: no such overlay; environments: {known}")
    return path


def model_uri(model_name: str, version: int) -> str:
    """A pinned registry URI: the manifest says exactly which version runs (never an alias)."""
    return f"models:/{model_name}/{version}"


def overlay_values(model_name: str, version: int, image_tag: str | None) -> dict[str, str]:
    """Values for the ``# mlops:<key>`` markers; a missing image tag leaves the tag alone."""
    if version < 1:
        raise DeployError(f"model version must be a positive integer, got {version}")
    values = {"model-version": str(version), "model-uri": model_uri(model_name, version)}
    if image_tag is not None:
        if not IMAGE_TAG.match(image_tag):
            raise DeployError(f"{image_tag!r} is not a valid image tag")
        values["image-tag"] = image_tag
    return values


def set_marked_values(text: str, values: Mapping[str, str], source: str = "<text>") -> str:
    """Rewrite the value on every line marked ``# mlops:<key>`` for a key in ``values``.

    Quoting follows the old value (a quoted value stays quoted); every key must be marked at least
    once, so a hand-edited overlay that lost a marker fails loudly instead of deploying half.
    """
    seen: set[str] = set()
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = MARKED_LINE.match(body)
        if match and match["key"] in values:
            seen.add(match["key"])
            old, new = match["value"], values[match["key"]]
            quoted = json.dumps(new) if old.startswith('"') else new
            line = f"{match['head']}{quoted}{match['tail']}{line[len(body) :]}"
        lines.append(line)
    missing = sorted(set(values) - seen)
    if missing:
        raise DeployError(f"{source}: no line marked `# mlops:{missing[0]}` (markers: {missing})")
    return "".join(lines)


def read_marked_values(text: str) -> dict[str, str]:
    """The current value of each marker (first occurrence), unquoted."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = MARKED_LINE.match(line)
        if match and match["key"] not in found:
            found[match["key"]] = match["value"].strip().strip('"')
    return found


def update_overlay(
    root: Path, env: str, model_name: str, version: int, image_tag: str | None = None
) -> bool:
    """Point an environment's overlay at a model version (and image tag); True if it changed."""
    path = overlay_path(root, env)
    before = path.read_text(encoding="utf-8")
    after = set_marked_values(
        before, overlay_values(model_name, version, image_tag), str(path.relative_to(root))
    )
    if after == before:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(after, encoding="utf-8")
    tmp.replace(path)
    return True


def git_commit(root: Path, paths: Iterable[Path], message: str) -> str:
    """Commit exactly ``paths`` (other staged changes stay staged) and return the commit SHA."""
    relative = [str(p.relative_to(root)) for p in paths]
    for args in (["add", "--", *relative], ["commit", "-q", "-m", message, "--only", *relative]):
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DeployError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    )
    return head.stdout.strip()


def deploy(
    root: Path,
    env: str,
    model_name: str,
    version: int,
    image_tag: str | None = None,
    commit: bool = False,
) -> dict[str, Any]:
    """Update one overlay; with ``commit``, commit it (no commit when nothing changed)."""
    changed = update_overlay(root, env, model_name, version, image_tag)
    outcome: dict[str, Any] = {
        "env": env,
        "model_uri": model_uri(model_name, version),
        "image_tag": image_tag,
        "changed": changed,
        "commit": None,
    }
    if changed and commit:
        image = f" (image {image_tag})" if image_tag else ""
        message = f"Deploy {model_name} v{version} to {env}{image}"
        outcome["commit"] = git_commit(root, [overlay_path(root, env)], message)
    return outcome


def rollback(
    params: Params,
    root: Path,
    to: int | None = None,
    envs: Iterable[str] = ("production", "staging"),
    commit: bool = True,
) -> dict[str, Any]:
    """Move ``champion`` back (to ``previous`` or ``to``) and point the overlays at it, as one
    commit. If updating or committing the manifests fails, the aliases and files are put back."""
    from construction_delays.registry import rollback_champion, undo_rollback

    outcome = rollback_champion(params, root, to)
    version = outcome["champion"]
    paths = [overlay_path(root, env) for env in envs]
    originals = {path: path.read_text(encoding="utf-8") for path in paths}
    try:
        changed = [
            path
            for env, path in zip(envs, paths, strict=True)
            if update_overlay(root, env, params.mlflow.registered_model, version)
        ]
        outcome["files"] = [str(p.relative_to(root)) for p in changed]
        outcome["commit"] = None
        if changed and commit:
            message = (
                f"Roll back {params.mlflow.registered_model} to v{version}"
                f" (was v{outcome['from']}): {', '.join(envs)}"
            )
            outcome["commit"] = git_commit(root, changed, message)
    except BaseException:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
        if outcome["changed"]:
            undo_rollback(params, root, outcome["captured"])
        raise
    return outcome


# --- smoke test of a deployed endpoint -----------------------------------------------------------


def _request(url: str, payload: Any | None = None, timeout: float = 10.0) -> tuple[int, str]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def smoke_test(
    url: str, payload: Any, wait_seconds: float = 300.0, interval: float = 5.0
) -> dict[str, Any]:
    """Wait until ``GET /ready`` answers 200 (a rollout takes a while), then ``POST /predict``
    with ``payload`` and require a 200 JSON answer. DeployError says which step failed."""
    if not url.startswith(("http://", "https://")):
        raise DeployError(f"{url!r}: the endpoint must be an http(s) URL")
    base = url.rstrip("/")
    deadline = time.monotonic() + wait_seconds
    status, body = 0, ""
    while True:
        try:
            status, body = _request(f"{base}/ready")
        except (urllib.error.URLError, OSError) as error:
            status, body = 0, str(error)
        if status == 200 or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if status != 200:
        raise DeployError(
            f"{base}/ready: not ready after {wait_seconds:g}s ({status}: {body[:200]})"
        )
    status, body = _request(f"{base}/predict", payload)
    if status != 200:
        raise DeployError(f"{base}/predict: HTTP {status}: {body[:500]}")
    try:
        answer = json.loads(body)
    except json.JSONDecodeError:
        raise DeployError(f"{base}/predict: answer is not JSON: {body[:200]}") from None
    return {"url": base, "ready": True, "predict": answer}
