"""deploy/: the base and each overlay render to valid Kubernetes objects (kubernetes-validate
against its bundled schemas, strict), with the probes, resources and security settings serving
needs; `mlops deploy` edits an overlay deterministically and keeps its comments."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from construction_delays.deployment import (
    DeployError,
    deploy,
    read_marked_values,
    set_marked_values,
    update_overlay,
)

from tests.conftest import MODEL, ROOT, SLUG
from tests.deployment.kustomize import kustomize_command, render, render_minimal

DEPLOY = ROOT / "deploy"
ENVIRONMENTS = ("staging", "production")
K8S_VERSION = "1.30.0"


def validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    return tmp_path


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml"])
def test_base_resources_are_valid(name: str) -> None:
    for doc in yaml.safe_load_all((DEPLOY / "base" / name).read_text(encoding="utf-8")):
        validate(doc)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overlay_renders_to_valid_objects(env: str) -> None:
    docs = render(DEPLOY / "overlays" / env)
    assert {doc["kind"] for doc in docs} == {"Deployment", "Service", "ConfigMap"}
    for doc in docs:
        validate(doc)
        assert doc["metadata"]["namespace"] == f"{SLUG}-{env}"


def test_the_server_is_probed_bounded_and_locked_down() -> None:
    deployment = by_kind(render(DEPLOY / "overlays" / "production"), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"requests", "limits"} <= set(container["resources"])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["ports"][0]["containerPort"] == 8000
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_updates_the_rendered_overlay(env: str, deploy_copy: Path) -> None:
    assert update_overlay(deploy_copy, env, MODEL, 7, "sha-abc123") is True
    docs = render(deploy_copy / "deploy" / "overlays" / env)
    deployment = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith(":sha-abc123")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["model-version"] == "7"
    config = by_kind(docs, "ConfigMap")
    assert config["data"] == {"MODEL_URI": f"models:/{MODEL}/7", "MODEL_VERSION": "7"}
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    for doc in docs:
        validate(doc)


@pytest.mark.skipif(kustomize_command() is None, reason="no kustomize/kubectl on PATH")
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_fallback_renderer_agrees_with_kustomize(env: str) -> None:
    def essentials(docs: list[dict[str, Any]]) -> dict[str, Any]:
        deployment = by_kind(docs, "Deployment")
        return {
            "image": deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "replicas": deployment["spec"]["replicas"],
            "annotations": deployment["spec"]["template"]["metadata"]["annotations"],
            "namespace": deployment["metadata"]["namespace"],
            "config": by_kind(docs, "ConfigMap")["data"],
        }

    overlay = DEPLOY / "overlays" / env
    assert essentials(render(overlay)) == essentials(render_minimal(overlay))


def container_image(docs: list[dict[str, Any]]) -> str:
    (container,) = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container["image"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_pins_the_pushed_image_by_name_tag_and_digest(env: str, deploy_copy: Path) -> None:
    name, digest = f"ghcr.io/acme/{SLUG}", f"sha256:{'ab' * 32}"
    tag = "sha-0123456789abcdef0123456789abcdef01234567"
    overlay = deploy_copy / "deploy" / "overlays" / env
    outcome = deploy(deploy_copy, env, MODEL, 4, tag, image_digest=digest, image_name=name)
    assert outcome["changed"] is True and outcome["image_digest"] == digest
    assert container_image(render(overlay)) == f"{name}:{tag}@{digest}"
    assert container_image(render_minimal(overlay)) == f"{name}:{tag}@{digest}"
    # A later tag without a digest clears the old digest: it must not keep pulling the old image.
    assert update_overlay(deploy_copy, env, MODEL, 4, "0.2.0") is True
    assert container_image(render(overlay)) == f"{name}:0.2.0"


def test_image_values_are_validated_before_anything_is_written(deploy_copy: Path) -> None:
    path = deploy_copy / "deploy" / "overlays" / "staging" / "kustomization.yaml"
    before = path.read_text(encoding="utf-8")
    digest = f"sha256:{'0a' * 32}"
    cases = [
        ({"image_tag": "t", "image_digest": "sha256:short"}, "not an image digest"),
        ({"image_tag": "t", "image_digest": f"md5:{'0' * 64}"}, "not an image digest"),
        ({"image_digest": digest}, "needs the image tag"),
        ({"image_name": "GHCR.io/Acme/App"}, "not an image name"),
        ({"image_name": "ghcr.io/acme/app:latest"}, "not an image name"),
        ({"image_name": "ghcr.io/acme/app; rm -rf /"}, "not an image name"),
    ]
    for kwargs, message in cases:
        tag = kwargs.pop("image_tag", None)
        with pytest.raises(DeployError, match=message):
            update_overlay(deploy_copy, "staging", MODEL, 1, tag, **kwargs)
    assert path.read_text(encoding="utf-8") == before
    assert update_overlay(deploy_copy, "staging", MODEL, 1, image_name="localhost:5000/a/b-c")


def test_an_overlay_without_the_digest_marker_refuses_a_new_tag(deploy_copy: Path) -> None:
    path = deploy_copy / "deploy" / "overlays" / "staging" / "kustomization.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        "".join(line for line in text.splitlines(True) if "mlops:image-digest" not in line),
        encoding="utf-8",
    )
    with pytest.raises(DeployError, match="no line marked `# mlops:image-digest`"):
        update_overlay(deploy_copy, "staging", MODEL, 1, "sha-1234")


def test_deploy_edits_only_marked_values_and_keeps_comments(deploy_copy: Path) -> None:
    path = deploy_copy / "deploy" / "overlays" / "staging" / "kustomization.yaml"
    before = path.read_text(encoding="utf-8")
    outcome = deploy(deploy_copy, "staging", MODEL, 3)
    after = path.read_text(encoding="utf-8")
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert outcome["changed"] is True and outcome["commit"] is None
    assert len(changed) == 3 and all("# mlops:" in new for _, new in changed)
    assert read_marked_values(after) == {
        "model-version": "3",
        "image-name": f"ghcr.io/your-org/{SLUG}",
        "image-tag": "0.1.0",
        "image-digest": "",
        "model-uri": f"models:/{MODEL}/3",
    }
    assert 'model-version: "3" # mlops:model-version' in after
    assert deploy(deploy_copy, "staging", MODEL, 3)["changed"] is False  # deterministic


def test_deploy_refuses_bad_input(deploy_copy: Path) -> None:
    with pytest.raises(DeployError, match="no such overlay"):
        update_overlay(deploy_copy, "qa", MODEL, 1)
    with pytest.raises(DeployError, match="not a valid image tag"):
        update_overlay(deploy_copy, "staging", MODEL, 1, "bad tag; rm -rf /")
    with pytest.raises(DeployError, match="positive integer"):
        update_overlay(deploy_copy, "staging", MODEL, 0)
    with pytest.raises(DeployError, match="no line marked `# mlops:model-uri`"):
        set_marked_values("model-version: 1 # mlops:model-version\n", {"model-uri": "x"})


def test_marker_edit_keeps_quoting_and_line_endings() -> None:
    text = 'a: "1" # mlops:model-version keep me\r\n  - MODEL_URI=old # mlops:model-uri\r\n'
    new = set_marked_values(text, {"model-version": "2", "model-uri": "models:/m/2"})
    assert (
        new
        == 'a: "2" # mlops:model-version keep me\r\n  - MODEL_URI=models:/m/2 # mlops:model-uri\r\n'
    )
