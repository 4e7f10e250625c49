"""Template updates reach generated projects: `cruft update` re-renders the template at the
recorded commit and at the new one (running the hooks both times) and applies the difference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.template.conftest import GIT_IDENTITY, Render, copy_template, git

EXTRA_MODULE = '"""Added to the template after the project was generated."""\n\nfrom construction_delays.config import load_params\n\n__all__ = ["load_params"]\n'


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_IDENTITY}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(Path(sys.executable).parent / "cruft"), *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )


def test_cruft_update_brings_a_later_template_commit_with_names_rewritten(
    render: Render, tmp_path: Path
) -> None:
    template = copy_template(tmp_path / "template")
    project = render(
        template=str(template),
        project_name="Delay Forecast",
        task_type="regression",
        dvc_remote_url=str(tmp_path / "remote"),
    )
    # The project evolves on its own: a local change the update must keep.
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  folds: 5", "  folds: 3"))
    git("commit", "-qam", "fewer folds", cwd=project)
    assert cruft("check", cwd=project).returncode == 0

    # Commit B of the template: a new module, and changes to a module and the README.
    (template / "src/construction_delays/extra.py").write_text(EXTRA_MODULE)
    cli = template / "src/construction_delays/cli.py"
    cli.write_text(cli.read_text() + "\n# Added in B: construction_delays\n")
    readme = template / "README.md"
    readme.write_text(
        readme.read_text().replace("\n## Layout\n", "\nB: construction-delays.\n\n## Layout\n")
    )
    git("add", "-A", cwd=template)
    git("commit", "-qm", "B", cwd=template)
    commit_b = git("rev-parse", "HEAD", cwd=template).strip()
    assert cruft("check", cwd=project).returncode != 0  # out of date

    result = cruft("update", "-y", cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr
    extra = project / "src/delay_forecast/extra.py"
    assert extra.read_text() == EXTRA_MODULE.replace("construction_delays", "delay_forecast")
    assert (
        (project / "src/delay_forecast/cli.py")
        .read_text()
        .endswith("\n# Added in B: delay_forecast\n")
    )
    assert "\nB: delay-forecast.\n\n## Layout\n" in (project / "README.md").read_text()
    assert "  folds: 3" in params.read_text()  # the project's own change is kept
    assert "  task: regression" in params.read_text()  # and its answers still apply
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_b
    assert not list(project.rglob("*.rej"))
    changed = {line[3:] for line in git("status", "--porcelain", cwd=project).splitlines()}
    assert changed == {
        ".cruft.json",
        "README.md",
        "src/delay_forecast/cli.py",
        "src/delay_forecast/extra.py",
    }
    assert cruft("check", cwd=project).returncode == 0
