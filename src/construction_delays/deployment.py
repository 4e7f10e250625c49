"""Deployment is a commit: the kustomize overlays under ``deploy/overlays/<env>/`` say which image
and which model version run where, and a GitOps controller (Argo CD, Flux) applies them.

``mlops deploy`` rewrites only the overlay lines marked ``# mlops:<key>`` (text edits, so comments
and layout stay as people wrote them) and can commit the result; ``mlops rollback`` moves the
registry's ``champion`` back and commits the manifests in one commit; ``mlops smoke`` checks a
deployed endpoint; ``mlops image-check`` refuses to build the serving image while the
Dockerfile's base images are placeholders; ``mlops image-tag`` names the image by what it is built
from, so a merge that changes none of it reuses the image (and asks no one to approve it again).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
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
# A repository as registries spell it, lower case: [host[:port]/]path, e.g. ghcr.io/acme/app.
IMAGE_NAME = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class DeployError(ProjectError, RuntimeError):
    pass


class SourceMovedError(DeployError):
    """The environment deployed from no longer runs what was approved (or runs nothing yet)."""


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


def overlay_values(
    model_name: str,
    version: int,
    image_tag: str | None,
    image_digest: str | None = None,
    image_name: str | None = None,
) -> dict[str, str]:
    """Values for the ``# mlops:<key>`` markers; what is not given is left alone.

    A new image tag always sets the digest too: to ``image_digest`` (kustomize then renders
    ``name:tag@sha256:...``, which pulls exactly the pushed image), or clears it, so a digest left
    from an earlier deploy cannot silently override the new tag.
    """
    if version < 1:
        raise DeployError(f"model version must be a positive integer, got {version}")
    values = {"model-version": str(version), "model-uri": model_uri(model_name, version)}
    if image_tag is not None:
        if not IMAGE_TAG.match(image_tag):
            raise DeployError(f"{image_tag!r} is not a valid image tag")
        values["image-tag"] = image_tag
        if image_digest is not None and not IMAGE_DIGEST.match(image_digest):
            raise DeployError(f"{image_digest!r} is not an image digest (sha256:<64 hex>)")
        values["image-digest"] = image_digest or ""
    elif image_digest is not None:
        raise DeployError("an image digest needs the image tag it was pushed as (IMAGE_TAG)")
    if image_name is not None:
        if not IMAGE_NAME.match(image_name):
            raise DeployError(
                f"{image_name!r} is not an image name (lower case, e.g. ghcr.io/acme/app)"
            )
        values["image-name"] = image_name
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
    root: Path,
    env: str,
    model_name: str,
    version: int,
    image_tag: str | None = None,
    *,
    image_digest: str | None = None,
    image_name: str | None = None,
) -> bool:
    """Point an environment's overlay at a model version (and image); True if it changed."""
    path = overlay_path(root, env)
    before = path.read_text(encoding="utf-8")
    values = overlay_values(model_name, version, image_tag, image_digest, image_name)
    after = set_marked_values(before, values, str(path.relative_to(root)))
    if after == before:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(after, encoding="utf-8")
    tmp.replace(path)
    return True


def git_commit(root: Path, paths: Iterable[Path], message: str) -> str:
    """Commit exactly ``paths`` (other staged changes stay staged) and return the commit SHA.
    If the commit fails (a hook, no identity), ``paths`` are unstaged again."""
    relative = [str(p.relative_to(root)) for p in paths]
    for args in (["add", "--", *relative], ["commit", "-q", "-m", message, "--only", *relative]):
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            subprocess.run(["git", "reset", "-q", "--", *relative], cwd=root, check=False)
            raise DeployError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    )
    return head.stdout.strip()


def push_commit(root: Path, branch: str, remote: str = "origin") -> str:
    """Rebase the commit just made onto ``remote/branch`` and push it; return the pushed SHA.
    DeployError when either step fails (a protected branch, a conflicting concurrent commit)."""
    for args in (
        ["pull", "--rebase", "--quiet", remote, branch],
        ["push", remote, f"HEAD:{branch}"],
    ):
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DeployError(
                f"`git {' '.join(args)}` failed: {result.stderr.strip()[:500]}; the local commit"
                " stays (`git reset --hard HEAD~1` drops it)"
            )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    )
    return head.stdout.strip()


DEPLOYED_KEYS = ("model-version", "image-name", "image-tag", "image-digest")


def deployed(root: Path, env: str) -> dict[str, str]:
    """What an overlay runs now: its marked model version and image (name, tag, digest)."""
    values = read_marked_values(overlay_path(root, env).read_text(encoding="utf-8"))
    return {key: values.get(key, "") for key in DEPLOYED_KEYS}


def follow(
    root: Path, source: str, expect: Mapping[str, str] | None = None, champion: int | None = None
) -> dict[str, str]:
    """What ``source`` runs (model version and image), to deploy the same elsewhere: production
    takes what passed staging. ``expect`` (key -> value, keys of DEPLOYED_KEYS) is what was
    approved: SourceMovedError when ``source`` runs no model yet or has moved on from it (a later
    merge or a rollback), since deploying what it runs now would deploy something nobody
    approved; also when it runs another version than the registry's ``champion`` (when known): a
    run that was past promotion when a rollback happened can put the rolled-back version back."""
    values = deployed(root, source)
    where = overlay_path(root, source).relative_to(root)
    if not values["model-version"].isdigit():
        raise SourceMovedError(
            f"{where}: {source} runs no model version yet ({values['model-version']!r}):"
            f" deploy to {source} first"
        )
    moved = [
        f"{key} {values[key] or '(empty)'}, not {value or '(empty)'}"
        for key, value in (expect or {}).items()
        if values[key] != value
    ]
    if moved:
        raise SourceMovedError(
            f"{where}: {source} now runs {'; '.join(moved)} (a later merge or a rollback moved it"
            " on since the approval): nothing deployed"
        )
    if champion is not None and int(values["model-version"]) != champion:
        raise SourceMovedError(
            f"{where}: {source} runs v{values['model-version']}, but the registry's @champion is"
            f" v{champion} (a rollback since): nothing deployed"
        )
    return values


def pending_changes(root: Path, env: str, values: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The marked values a deploy would change in ``env``'s overlay: key -> (now, then)."""
    current = read_marked_values(overlay_path(root, env).read_text(encoding="utf-8"))
    return {
        key: (current.get(key, ""), new)
        for key, new in values.items()
        if current.get(key, "") != new
    }


def deploy(
    root: Path,
    env: str,
    model_name: str,
    version: int,
    image_tag: str | None = None,
    commit: bool = False,
    *,
    image_digest: str | None = None,
    image_name: str | None = None,
) -> dict[str, Any]:
    """Update one overlay; with ``commit``, commit it (no commit when nothing changed)."""
    changed = update_overlay(
        root, env, model_name, version, image_tag, image_digest=image_digest, image_name=image_name
    )
    outcome: dict[str, Any] = {
        "env": env,
        "model_uri": model_uri(model_name, version),
        "image_tag": image_tag,
        "image_digest": image_digest,
        "image_name": image_name,
        "changed": changed,
        "commit": None,
    }
    if changed and commit:
        image = f" (image {image_tag})" if image_tag else ""
        if image_tag and image_digest:
            image = f" (image {image_tag}, {image_digest[:19]})"
        message = f"Deploy {model_name} v{version} to {env}{image}"
        outcome["commit"] = git_commit(root, [overlay_path(root, env)], message)
    return outcome


def rollback(
    params: Params,
    root: Path,
    to: int | None = None,
    envs: Iterable[str] = ("production", "staging"),
    commit: bool = True,
    push_to: str | None = None,
) -> dict[str, Any]:
    """Move ``champion`` back (to ``previous`` or ``to``) and point the overlays at it, as one
    commit, pushed to ``push_to`` when given. If updating, committing or pushing the manifests
    fails, the aliases and files are put back: the registry never names a champion the deployed
    manifests do not."""
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
            if push_to:
                outcome["commit"] = push_commit(root, push_to)
    except BaseException:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
        if outcome["changed"]:
            undo_rollback(params, root, outcome)
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


def _served_version(base: str) -> str | None:
    """The model version ``GET /metadata`` names, or None when it cannot tell."""
    try:
        status, body = _request(f"{base}/metadata")
        version = json.loads(body).get("version") if status == 200 else None
    except (urllib.error.URLError, OSError, json.JSONDecodeError, AttributeError):
        return None
    return None if version is None else str(version)


def smoke_test(
    url: str,
    payload: Any,
    wait_seconds: float = 300.0,
    interval: float = 5.0,
    expect_version: str | None = None,
) -> dict[str, Any]:
    """Wait until ``GET /ready`` answers 200 (a rollout takes a while) and, with
    ``expect_version``, until ``GET /metadata`` names that model version (right after the deploy
    commit the old pods still answer: the GitOps controller has not synced yet); then
    ``POST /predict`` with ``payload`` and require a 200 JSON answer. DeployError says which step
    failed."""
    if not url.startswith(("http://", "https://")):
        raise DeployError(f"{url!r}: the endpoint must be an http(s) URL")
    base = url.rstrip("/")
    deadline = time.monotonic() + wait_seconds
    status, body, served = 0, "", None
    while True:
        try:
            status, body = _request(f"{base}/ready")
        except (urllib.error.URLError, OSError) as error:
            status, body = 0, str(error)
        if status == 200 and expect_version is not None:
            served = _served_version(base)
        rolled_out = expect_version is None or served == expect_version
        if (status == 200 and rolled_out) or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if status != 200:
        raise DeployError(
            f"{base}/ready: not ready after {wait_seconds:g}s ({status}: {body[:200]})"
        )
    if expect_version is not None and served != expect_version:
        raise DeployError(
            f"{base}/metadata: still serving model version {served or '(unknown)'} after"
            f" {wait_seconds:g}s, expected {expect_version}: has the GitOps controller synced"
            " the deploy commit?"
        )
    status, body = _request(f"{base}/predict", payload)
    if status != 200:
        raise DeployError(f"{base}/predict: HTTP {status}: {body[:500]}")
    try:
        answer = json.loads(body)
    except json.JSONDecodeError:
        raise DeployError(f"{base}/predict: answer is not JSON: {body[:200]}") from None
    return {"url": base, "ready": True, "predict": answer}


# --- the serving image's base images -------------------------------------------------------------

PINNED_IMAGE = re.compile(r"^(?P<name>[^@\s]+)@sha256:(?P<hex>[0-9a-f]{64})$")
PLACEHOLDER_HEX = "0" * 64
_ARG = re.compile(r"^ARG\s+(?P<name>[A-Za-z_]\w*)(?:=(?P<value>.*))?$", re.IGNORECASE)
_FROM = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?$", re.IGNORECASE
)
_ARG_REF = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))")


def dockerfile_instructions(text: str) -> list[str]:
    """The instructions of a Dockerfile, one string each: continuations joined, comments dropped."""
    instructions: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        instructions.append(" ".join((current + line).split()))
        current = ""
    if current.strip():
        instructions.append(" ".join(current.split()))
    return instructions


def _substitute(text: str, values: Mapping[str, str | None]) -> str:
    return _ARG_REF.sub(lambda m: values[m["braced"] or m["plain"]] or "", text)


def base_images(text: str, overrides: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``(source, image)`` for each external image a stage starts ``FROM``, as a build would see
    it: ``source`` is the global ARG(s) naming it (``ARG PYTHON_IMAGE``) or ``FROM`` for a literal
    image, and ``image`` the override (a build-arg) if one is given and not empty, else the ARG's
    default (None when there is neither). Each pair once; earlier stages and ``scratch`` are not
    base images, and a build-arg reaches a FROM line only through an ARG declared before it."""
    defaults: dict[str, str | None] = {}  # the global ARGs: the only ones FROM lines can use
    stages: set[str] = set()
    found: list[tuple[str, str | None]] = []
    seen_from = False
    for instruction in dockerfile_instructions(text):
        arg = _ARG.match(instruction)
        if arg and not seen_from:
            value = arg["value"]
            defaults[arg["name"]] = None if value is None else value.strip().strip("\"'")
            continue
        match = _FROM.match(instruction)
        if match is None:
            continue
        seen_from = True
        names = [m["braced"] or m["plain"] for m in _ARG_REF.finditer(match["image"])]
        resolved = {n: (overrides.get(n) or "").strip() or defaults.get(n) for n in names}
        image = None
        if all(resolved[n] and n in defaults for n in names):
            image = _substitute(match["image"], resolved)
        if match["stage"]:
            stages.add(match["stage"].lower())
        if image is not None and (image.lower() in stages or image.lower() == "scratch"):
            continue
        source = ", ".join(f"ARG {name}" for name in names) if names else "FROM"
        if (source, image) not in found:
            found.append((source, image))
    return found


def check_base_images(dockerfile: Path, overrides: Mapping[str, str]) -> list[str]:
    """What stops ``dockerfile`` from building a pinned image with these build-arg ``overrides``
    (empty values count as unset): every base image must be ``name@sha256:<64 hex>`` and not the
    all-zero placeholder digest. One actionable sentence per problem; an empty list means ready."""
    if not dockerfile.is_file():
        return [f"{dockerfile}: no such file"]
    text = dockerfile.read_text(encoding="utf-8")
    if not any(_FROM.match(line) for line in dockerfile_instructions(text)):
        return [f"{dockerfile}: no FROM instruction"]
    problems = []
    for source, image in base_images(text, overrides):
        name = (image or "<image>").split("@", 1)[0]
        variable = source.removeprefix("ARG ")
        fix = (
            f"set {variable}={name}@sha256:<digest> (a repository variable for the main workflow,"
            " an environment variable for `make image-check`) or write it into the ARG default"
            if source.startswith("ARG ") and "," not in source
            else f"pin it in the Dockerfile as {name}@sha256:<digest>"
        )
        if image is None:
            problems.append(f"{source}: no default and no override; {fix}")
        elif (pinned := PINNED_IMAGE.match(image)) is None:
            problems.append(f"{source}: {image} is not pinned by digest; {fix}")
        elif pinned["hex"] == PLACEHOLDER_HEX:
            problems.append(
                f"{source}: {image} is a placeholder digest, not a real image; read the real one"
                f" with `docker buildx imagetools inspect {name}` and {fix}"
            )
    return problems


# What `docker build` reads: the Dockerfile, .dockerignore and the context files it lets through
# (its `!` lines; a test keeps the two lists equal).
IMAGE_INPUTS = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "params.yaml",
    "src",
)


def image_tag(root: Path, rev: str = "HEAD", build_args: Mapping[str, str] | None = None) -> str:
    """``build-<hex>``: a tag named by the image's inputs at commit ``rev``: the git blobs of
    :data:`IMAGE_INPUTS` and the build args that are set (an empty one keeps the Dockerfile's
    default, which is in the Dockerfile). Two commits that differ only elsewhere (tests, docs,
    workflows, dvc.lock) get the same tag, so the image built for one serves the other."""
    if not rev or rev.startswith("-"):
        raise DeployError(f"{rev!r} is not a commit (a hash, branch or tag, e.g. HEAD)")
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--full-tree", rev, "--", *IMAGE_INPUTS],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        raise DeployError(f"git ls-tree {rev}: {listing.stderr.strip() or 'failed'}")
    if not listing.stdout.strip():
        raise DeployError(f"{rev}: none of the image's inputs {list(IMAGE_INPUTS)} are committed")
    digest = hashlib.sha256(listing.stdout.encode())  # mode, blob hash and path of each file
    for name, value in sorted((build_args or {}).items()):
        if value:
            digest.update(f"--build-arg {name}={value}\n".encode())
    return f"build-{digest.hexdigest()[:16]}"


def reuse_image(
    name: str, tag: str, new_refs: Iterable[str], docker: str = "docker"
) -> tuple[str | None, str]:
    """If the registry holds ``name:tag``, give it ``new_refs`` too (``name:<tag>`` each; one
    source, so a carbon copy under the same digest) and return ``(digest, why)``; else
    ``(None, why)``: build it. Talks to the registry through ``docker buildx imagetools``, logged in
    as the caller is."""
    if not IMAGE_NAME.match(name):
        raise DeployError(
            f"image name {name!r}: want a lower-case repository, e.g. ghcr.io/acme/app"
        )
    refs = [ref.strip() for ref in new_refs if ref.strip()]
    if bad := [ref for ref in refs if not ref.startswith(f"{name}:")]:
        raise DeployError(f"tags {bad} are not tags of {name}")
    for value in (tag, *(ref.removeprefix(f"{name}:") for ref in refs)):
        if not IMAGE_TAG.match(value):
            raise DeployError(f"image tag {value!r}: want letters, digits, '_', '.', '-'")
    if shutil.which(docker) is None:
        raise DeployError(f"{docker!r} is not on PATH: reusing or building the image needs docker")
    imagetools = [docker, "buildx", "imagetools"]
    found = subprocess.run(
        [*imagetools, "inspect", f"{name}:{tag}", "--format", "{{.Manifest.Digest}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        reason = (found.stderr.strip().splitlines() or ["not found"])[-1]
        return None, f"no image {name}:{tag} to reuse ({reason})"
    digest = found.stdout.strip()
    if not IMAGE_DIGEST.match(digest):
        raise DeployError(f"{name}:{tag}: the registry answered {digest!r}, not a sha256 digest")
    if refs:
        tagged = subprocess.run(
            [*imagetools, "create", *(f"--tag={ref}" for ref in refs), f"{name}@{digest}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if tagged.returncode != 0:
            raise DeployError(
                f"tagging {name}@{digest} as {refs} failed: {tagged.stderr.strip() or 'no output'}"
            )
    return digest, f"reusing {name}:{tag} ({digest}), built from the same inputs"
