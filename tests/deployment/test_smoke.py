"""`mlops smoke` against a real HTTP server on localhost (a stand-in for the deployed endpoint)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from construction_delays.deployment import DeployError, smoke_test

from tests.conftest import ROOT, run, tool_env

PAYLOAD = json.loads((ROOT / "deploy" / "smoke" / "request.json").read_text(encoding="utf-8"))


class Handler(BaseHTTPRequestHandler):
    ready_after: ClassVar[int] = 0
    predict_status: ClassVar[int] = 200
    # The model version /metadata names: the old one until this many /metadata calls (a rollout).
    new_version_after: ClassVar[int] = 0
    calls: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.calls.append(self.path)
        if self.path == "/metadata":
            rolled_out = self.calls.count("/metadata") > self.new_version_after
            self._send(200, {"name": "model", "version": "2" if rolled_out else "1"})
            return
        ready = self.calls.count("/ready") > self.ready_after
        self._send(200 if ready else 503, {"ready": ready})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(self.path)
        self._send(self.predict_status, {"predictions": ["Delayed"] * len(body["records"])})


@pytest.fixture
def server() -> Iterator[str]:
    Handler.ready_after, Handler.predict_status, Handler.calls = 0, 200, []
    Handler.new_version_after = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_waits_for_ready_then_predicts(server: str) -> None:
    Handler.ready_after = 2
    outcome = smoke_test(server, PAYLOAD, wait_seconds=10, interval=0.05)
    assert outcome["predict"] == {"predictions": ["Delayed", "Delayed"]}
    assert Handler.calls == ["/ready"] * 3 + ["/predict"]


def test_waits_until_the_deployed_version_serves(server: str) -> None:
    """Right after the deploy commit the old pods are ready: /predict must wait for version 2."""
    Handler.new_version_after = 2
    smoke_test(server, PAYLOAD, wait_seconds=10, interval=0.05, expect_version="2")
    assert Handler.calls == ["/ready", "/metadata"] * 3 + ["/predict"]


def test_fails_when_the_deployed_version_never_serves(server: str) -> None:
    Handler.new_version_after = 10**6
    with pytest.raises(DeployError, match=r"still serving model version 1 after .*expected 2"):
        smoke_test(server, PAYLOAD, wait_seconds=0.2, interval=0.05, expect_version="2")
    assert "/predict" not in Handler.calls


def test_fails_when_predict_fails(server: str) -> None:
    Handler.predict_status = 500
    with pytest.raises(DeployError, match="/predict: HTTP 500"):
        smoke_test(server, PAYLOAD, wait_seconds=1)


def test_fails_when_never_ready(server: str) -> None:
    Handler.ready_after = 10**6
    with pytest.raises(DeployError, match="not ready after"):
        smoke_test(server, PAYLOAD, wait_seconds=0.2, interval=0.05)


def test_the_command_reads_the_url_from_the_environment(server: str) -> None:
    result = run(["mlops", "smoke", "--wait", "5"], ROOT, check=False)
    assert result.returncode != 0 and "SMOKE_URL" in result.stdout + result.stderr
    env = {**tool_env(), "SMOKE_URL": server}
    result = subprocess.run(
        ["mlops", "smoke", "--wait", "5"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "ready, /predict answered" in result.stdout + result.stderr
