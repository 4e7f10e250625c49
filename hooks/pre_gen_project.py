"""Cookiecutter pre-generation hook: reject bad answers before the project is written.

The logic is in hooks/_project_generator.py (tested in tests/template/). Cookiecutter renders this
file with Jinja and runs it from a temporary copy, so it first finds the template it came from.
"""

from __future__ import annotations

import json
import os
import sys
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


def main() -> None:
    template = template_dir(CONTEXT)
    if template is None:
        return  # cruft re-renders recorded answers; post_gen_project validates them again
    generator = load_generator(template)
    try:
        generator.pre_generate(CONTEXT)
    except generator.GenerationError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
