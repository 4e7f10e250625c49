"""Cookiecutter post-generation hook: fill the project from the template's tracked files.

The logic is in hooks/_project_generator.py (tested in tests/template/). Cookiecutter renders this
file with Jinja and runs it in the new project directory, so it first finds the template it came
from; cruft (`cruft update`) names only the template URL and commit, so it is cloned at that commit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")


# --- shared bootstrap: identical in pre_gen_project.py and post_gen_project.py (a test checks) ---
def template_dir(context: dict) -> Path | None:
    """The template directory cookiecutter renders from; None under cruft, which names none."""
    repo_dir = context.get("_repo_dir")
    if not repo_dir:
        return None
    candidates = [Path(repo_dir)]
    if not candidates[0].is_absolute():  # relative to cookiecutter's directory, not this one's
        candidates = [Path(f"/proc/{os.getppid()}/cwd"), Path(context["_output_dir"]) / repo_dir]
    for candidate in candidates:
        if (candidate / "hooks" / "_project_generator.py").is_file():
            return candidate.resolve()
    sys.exit(f"error: cannot find the template at {repo_dir!r}; give cookiecutter its full path")


def load_generator(template: Path) -> ModuleType:
    """hooks/_project_generator.py of the template."""
    sys.path.insert(0, str(template / "hooks"))
    import _project_generator

    return _project_generator


# --- end of shared bootstrap ---


def clone_at_commit(template: str, commit: str, into: Path) -> Path:
    """The template as of ``commit`` (what cruft renders), cloned into ``into``."""
    for args in (
        ["git", "clone", "--quiet", "--no-checkout", template, str(into)],
        ["git", "-C", str(into), "checkout", "--quiet", commit],
    ):
        result = subprocess.run(args, text=True, capture_output=True, check=False)
        if result.returncode != 0:
            sys.exit(f"error: {' '.join(args[:2])} of {template} failed: {result.stderr.strip()}")
    return into


def main() -> None:
    project = Path.cwd()
    template = template_dir(CONTEXT)
    scratch = None
    if template is None:
        scratch = Path(tempfile.mkdtemp(prefix="template-checkout-"))
        template = clone_at_commit(CONTEXT["_template"], CONTEXT["_commit"], scratch / "template")
    try:
        generator = load_generator(template)
        try:
            generator.post_generate(CONTEXT, template, project)
        except generator.GenerationError as error:
            sys.exit(f"error: {error}")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
