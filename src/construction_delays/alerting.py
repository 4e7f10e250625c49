"""Drift alerts as one GitHub issue, labelled ``model-drift``, that the monitor keeps up to date.

GitHub mails a failed scheduled run only to whoever last edited its cron line. An issue reaches
everyone who watches the repository, can be assigned, links to the fix (a retraining pull request
says "Fixes #N") and keeps the history. ``sync_drift_issue`` makes the issue follow the verdict:
drift opens one (or comments on the open one, so a drifting week after week is one thread, not a
pile), a warning comments on an open one, ``ok`` comments and closes it, ``insufficient`` (too few
rows to judge) leaves it alone. Plain REST over ``urllib``: no client library for four calls.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from construction_delays.errors import ProjectError

LABEL = "model-drift"
BODY_LIMIT = 60_000  # GitHub refuses issue and comment bodies over 65,536 characters


class AlertError(ProjectError, RuntimeError):
    pass


@dataclass(frozen=True)
class GitHub:
    """The REST API of one repository (``api_url`` is GITHUB_API_URL: Enterprise servers too)."""

    api_url: str
    repository: str
    token: str
    timeout: float = 20.0

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            said = error.read().decode("utf-8", "replace")[:300]
            hint = (
                "; the token needs `issues: write` (the monitor job's permissions)"
                if error.code in (403, 404)
                else ""
            )
            raise AlertError(
                f"GitHub API {method} {path.split('?')[0]}: HTTP {error.code} {said}{hint}"
            ) from None
        except (urllib.error.URLError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise AlertError(f"GitHub API at {self.api_url} unreachable: {reason}") from None
        return json.loads(body) if body else None


def open_drift_issue(github: GitHub) -> dict[str, Any] | None:
    """The open issue labelled ``model-drift`` (the oldest, if people opened more), or None."""
    query = urllib.parse.urlencode(
        {"labels": LABEL, "state": "open", "sort": "created", "direction": "asc", "per_page": 30}
    )
    found = github.request("GET", f"/issues?{query}") or []
    issues = [item for item in found if "pull_request" not in item]  # the endpoint lists PRs too
    return issues[0] if issues else None


def _body(markdown: str, run_url: str | None) -> str:
    text = markdown if len(markdown) <= BODY_LIMIT else markdown[:BODY_LIMIT] + "\n\n(cut)"
    return f"{text}\n\nMonitor run: {run_url}" if run_url else text


def sync_drift_issue(
    github: GitHub, verdict: str, reasons: list[str], markdown: str, run_url: str | None = None
) -> dict[str, Any]:
    """Make the ``model-drift`` issue follow ``verdict``; return what was done (``action``:
    opened, commented, closed or none) with the issue's number and URL."""
    issue = open_drift_issue(github)
    body = _body(markdown, run_url)
    if verdict == "drift" and issue is None:
        title = "Model drift: " + ("; ".join(reasons) or "the monitor's verdict is drift")
        created = github.request(
            "POST", "/issues", {"title": title[:250], "body": body, "labels": [LABEL]}
        )
        return {"action": "opened", "number": created["number"], "url": created["html_url"]}
    if issue is None or verdict == "insufficient":
        return {"action": "none", "number": issue and issue["number"], "url": None}
    number = issue["number"]
    if verdict == "ok":
        body = f"Back to **ok**: no drift in this batch, closing.\n\n{body}"
    github.request("POST", f"/issues/{number}/comments", {"body": body})
    if verdict == "ok":
        github.request(
            "PATCH", f"/issues/{number}", {"state": "closed", "state_reason": "completed"}
        )
        return {"action": "closed", "number": number, "url": issue["html_url"]}
    return {"action": "commented", "number": number, "url": issue["html_url"]}
