"""The model-drift issue follows the monitor's verdict, over real HTTP on loopback against a small
stand-in for GitHub's issues API (GitHub itself is not reachable from the tests)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from construction_delays.alerting import LABEL, AlertError, GitHub, sync_drift_issue
from construction_delays.files import write_json
from construction_delays.monitoring import DriftReport

from tests.conftest import tool_env

TOKEN, REPO = "t0ken", "acme/delays"


class IssuesApi(ThreadingHTTPServer):
    """Issues, comments and labels of one repository, as GitHub's REST API answers them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        # A pull request carrying the label: the issues endpoint lists PRs too.
        self.issues: list[dict[str, Any]] = [
            {"number": 1, "state": "open", "labels": [LABEL], "pull_request": {}, "title": "PR"}
        ]
        self.comments: dict[int, list[str]] = {}
        self.refuse_with: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: IssuesApi

    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> tuple[list[str], dict[str, list[str]]] | None:
        if self.server.refuse_with:
            self._answer(self.server.refuse_with, {"message": "Resource not accessible"})
            return None
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"message": "Bad credentials"})
            return None
        parts = urlsplit(self.path)
        prefix = f"/repos/{REPO}/issues"
        assert parts.path.startswith(prefix), parts.path
        return [p for p in parts.path[len(prefix) :].split("/") if p], parse_qs(parts.query)

    def _payload(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def _issue(self, number: int, **fields: Any) -> dict[str, Any]:
        (issue,) = [i for i in self.server.issues if i["number"] == number]
        issue.update(fields)
        return issue

    def do_GET(self) -> None:
        route = self._route()
        if route is None:
            return
        _, query = route
        found = [
            i
            for i in self.server.issues
            if i["state"] == query["state"][0] and query["labels"][0] in i["labels"]
        ]
        self._answer(200, found)

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            return
        path, payload = route[0], self._payload()
        if not path:  # POST /issues
            number = len(self.server.issues) + 1
            issue = {**payload, "number": number, "state": "open"}
            issue["html_url"] = f"https://github.test/{REPO}/issues/{number}"
            self.server.issues.append(issue)
            self._answer(201, issue)
        else:  # POST /issues/N/comments
            self.server.comments.setdefault(int(path[0]), []).append(payload["body"])
            self._answer(201, {"id": 1})

    def do_PATCH(self) -> None:
        route = self._route()
        if route is not None:
            self._answer(200, self._issue(int(route[0][0]), **self._payload()))


@pytest.fixture
def api() -> Iterator[IssuesApi]:
    server = IssuesApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def report(verdict: str, reasons: list[str]) -> DriftReport:
    reference = {"model": "random_forest", "rows": 4000, "profile": "reports/x.json"}
    thresholds = {
        "psi_warning": 0.1,
        "psi_drift": 0.25,
        "max_missing_increase": 0.1,
        "max_drifted_share": 0.25,
    }
    return DriftReport(verdict, reasons, "batch.csv", 800, reference, thresholds, [], [], [])


def sync(api: IssuesApi, verdict: str, reasons: list[str] | None = None) -> dict[str, Any]:
    drift = report(verdict, reasons or [])
    github = GitHub(api.url, REPO, TOKEN, timeout=5)
    return sync_drift_issue(github, verdict, drift.reasons, drift.to_markdown(), "https://run/9")


def test_the_issue_opens_on_drift_gathers_the_weeks_and_closes_when_back_to_ok(
    api: IssuesApi,
) -> None:
    assert sync(api, "ok")["action"] == "none"  # nothing open, nothing to close
    opened = sync(api, "drift", ["3 of 10 features drifted (share 0.30 > 0.25)"])
    assert opened == {
        "action": "opened",
        "number": 2,
        "url": f"https://github.test/{REPO}/issues/2",
    }
    issue = api.issues[1]
    assert issue["title"] == "Model drift: 3 of 10 features drifted (share 0.30 > 0.25)"
    assert issue["labels"] == [LABEL]
    assert issue["body"].startswith("## Drift monitor: drift ❌")
    assert issue["body"].endswith("Monitor run: https://run/9")
    # The next weeks: one thread, not a pile of issues; too few rows to judge leaves it alone.
    assert sync(api, "drift", ["still drifting"])["action"] == "commented"
    assert sync(api, "warning")["action"] == "commented"
    assert sync(api, "insufficient") == {"action": "none", "number": 2, "url": None}
    assert [c.splitlines()[0] for c in api.comments[2]] == [
        "## Drift monitor: drift ❌",
        "## Drift monitor: warning ⚠️",
    ]
    assert sync(api, "ok")["action"] == "closed"
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert api.comments[2][-1].startswith("Back to **ok**")
    assert len(api.issues) == 2 and api.issues[0]["state"] == "open"  # the labelled PR untouched
    assert sync(api, "drift", ["again"])["number"] == 3  # a new episode: a new issue


def test_a_refused_token_says_which_permission_it_needs(api: IssuesApi) -> None:
    api.refuse_with = 403
    with pytest.raises(AlertError, match=r"HTTP 403 .*the token needs `issues: write`"):
        sync(api, "drift", ["x"])
    api.refuse_with = None
    bad = GitHub(api.url, REPO, "wrong", timeout=5)
    with pytest.raises(AlertError, match="HTTP 401"):
        sync_drift_issue(bad, "drift", [], "## x")


def alert(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mlops", "alert"],
        cwd=cwd,
        env={**tool_env(), **env},
        text=True,
        capture_output=True,
        check=False,
    )


def test_mlops_alert_reads_what_the_monitor_wrote(api: IssuesApi, tmp_path: Path) -> None:
    assert "nothing to alert" in alert(tmp_path).stderr  # no monitoring/drift.json yet
    drift = report("drift", ["predictions drifted (PSI 0.41 > 0.25)"])
    write_json(tmp_path / "monitoring" / "drift.json", drift.to_dict())
    (tmp_path / "monitoring" / "drift_report.md").write_text(drift.to_markdown(), encoding="utf-8")
    unset = alert(tmp_path, GITHUB_TOKEN="", GITHUB_REPOSITORY=REPO)
    assert unset.returncode == 2 and "set GITHUB_TOKEN" in unset.stderr
    done = alert(
        tmp_path,
        GITHUB_API_URL=api.url,
        GITHUB_REPOSITORY=REPO,
        GITHUB_TOKEN=TOKEN,
        GITHUB_RUN_ID="77",
        GITHUB_SERVER_URL="https://github.test",
    )
    assert done.returncode == 0, done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert f"drift: opened issue #2 https://github.test/{REPO}/issues/2" in said
    assert api.issues[1]["title"] == "Model drift: predictions drifted (PSI 0.41 > 0.25)"
    assert api.issues[1]["body"].endswith(
        f"Monitor run: https://github.test/{REPO}/actions/runs/77"
    )
