"""Rendering the kustomize overlays in tests, without a cluster.

``render`` uses ``kubectl kustomize`` (or a ``kustomize`` binary) when one is on PATH; otherwise
``render_minimal`` applies the few kustomize features deploy/ uses (resources, namespace, labels,
commonAnnotations, replicas, images with kustomize 5's ``name:tag@digest``, configMapGenerator with
merge) in Python. Tests compare the two where a binary exists, so the fallback cannot silently
drift from real kustomize.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(directory: Path) -> list[dict[str, Any]]:
    """The overlay's resources as kustomize renders them (the minimal renderer without a binary)."""
    command = kustomize_command()
    if command is None:
        return render_minimal(directory)
    result = subprocess.run([*command, str(directory)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _load(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))


def _literals(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def render_minimal(directory: Path) -> list[dict[str, Any]]:
    """A small kustomize: enough for deploy/, not a general implementation (no hash suffixes)."""
    spec = _load(directory)
    resources: list[dict[str, Any]] = []
    generated: dict[str, dict[str, str]] = {}
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            base = render_minimal(path)
            for doc in base:
                if doc["kind"] == "ConfigMap":
                    generated[doc["metadata"]["name"]] = doc["data"]
                else:
                    resources.append(doc)
        else:
            resources += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    for generator in spec.get("configMapGenerator", []):
        literals = _literals(generator.get("literals", []))
        if generator.get("behavior") == "merge":
            generated[generator["name"]] = {**generated[generator["name"]], **literals}
        else:
            generated[generator["name"]] = literals
    resources += [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": data}
        for n, data in generated.items()
    ]
    for doc in resources:
        _apply(doc, spec)
    return resources


def _apply(doc: dict[str, Any], spec: dict[str, Any]) -> None:
    metadata = doc.setdefault("metadata", {})
    if spec.get("namespace"):
        metadata["namespace"] = spec["namespace"]
    for label in spec.get("labels", []):
        metadata.setdefault("labels", {}).update(label["pairs"])
    if spec.get("commonAnnotations"):
        metadata.setdefault("annotations", {}).update(spec["commonAnnotations"])
    if doc["kind"] != "Deployment":
        return
    template = doc["spec"]["template"]
    if spec.get("commonAnnotations"):
        template["metadata"].setdefault("annotations", {}).update(spec["commonAnnotations"])
    for replicas in spec.get("replicas", []):
        if replicas["name"] == metadata["name"]:
            doc["spec"]["replicas"] = replicas["count"]
    for container in template["spec"]["containers"]:
        for image in spec.get("images", []):
            if container["image"] == image["name"]:
                digest = f"@{image['digest']}" if image.get("digest") else ""
                name = image.get("newName", image["name"])
                container["image"] = f"{name}:{image['newTag']}{digest}"
