"""Tracking-store URIs are printed and written without their secrets."""

from __future__ import annotations

import pytest

from construction_delays.tracking import redact

from tests.serving.conftest import free_port


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://alice:s3cret@mlflow.example.com:5000", "https://mlflow.example.com:5000"),
        ("postgresql://bob:pw@db/mlflow", "postgresql://db/mlflow"),
        (
            "postgresql://db/mlflow?password=s3cret&sslmode=require",
            "postgresql://db/mlflow?password=***&sslmode=require",
        ),
        (
            "https://mlflow.example.com/?api_key=abc&x=1",
            "https://mlflow.example.com/?api_key=***&x=1",
        ),
        ("sqlite:////work/project/mlflow.db", "sqlite:////work/project/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_credentials_and_secret_query_values_are_removed(uri: str, shown: str) -> None:
    assert redact(uri) == shown
    assert "s3cret" not in redact(uri) and "abc" not in redact(uri).split("?")[-1]


def test_a_server_behind_a_proxy_is_not_probed_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the proxy can reach it: a direct connection failing says nothing about the server."""
    from construction_delays.tracking import TrackingStoreError, check_reachable

    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    closed = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(TrackingStoreError, match="not reachable"):
        check_reachable(closed, timeout=2)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    check_reachable(closed, timeout=2)
