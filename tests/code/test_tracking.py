"""Tracking-store URIs are printed and written without their secrets."""

from __future__ import annotations

import pytest

from construction_delays.tracking import redact


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
