"""Unit tests of hooks/_project_generator.py: validation, the name rules and each file edit."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from construction_delays import sample_data
from construction_delays.config import parse_params
from construction_delays.model_zoos import MODEL_ZOOS

from tests.code.test_adopt import top_level_block
from tests.conftest import ROOT
from tests.template.conftest import generator, tracked

GOOD: dict[str, str] = {
    "project_name": "Delay Forecast",
    "project_slug": "delay-forecast",
    "module_name": "delay_forecast",
    "description": 'Forecasts "delays" \\ with quotes """ and backslashes',
    "author_name": "Ada Lovelace",
    "author_email": "ada@example.com",
    "license": "Apache-2.0",
    "python_version": "3.12",
    "task_type": "regression",
    "target_column": "Delay (days)",
    "data_path": "data/activities.csv",
    "mlflow_tracking_uri": "https://mlflow.example.com",
    "dvc_remote_url": "s3://bucket/delay-forecast",
    "registered_model_name": "delay-forecast-regressor",
}
OLD_NAME = re.compile(r"construction[\s_-]*delays?", re.IGNORECASE)


def answers(**changes: str) -> Any:
    return generator.validate({**GOOD, **changes})


# --- the template's names are where the generator expects them -------------------------------


def test_template_names_match_the_template_files() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert pyproject["project"]["name"] == generator.TEMPLATE_SLUG
    assert pyproject["project"]["scripts"]["mlops"] == f"{generator.TEMPLATE_MODULE}.cli:main"
    assert (ROOT / "src" / generator.TEMPLATE_MODULE / "__init__.py").is_file()
    assert params["mlflow"] == {
        "experiment": generator.TEMPLATE_SLUG,
        "registered_model": generator.TEMPLATE_MODEL,
    }
    assert params["data"]["path"] == generator.TEMPLATE_DATA_PATH
    assert Path(generator.TEMPLATE_DATA_PATH).stem == generator.TEMPLATE_DATA_STEM
    assert params["data"]["target"] == generator.SAMPLE_TARGETS["classification"]
    assert generator.SAMPLE_TARGETS == {
        "classification": sample_data.TARGET,
        "regression": sample_data.REGRESSION_TARGET,
    }


def test_every_old_name_in_a_tracked_file_is_covered_by_a_rule() -> None:
    """Guard: a tracked file that spells the project name another way (`Construction Delays`,
    `construction delays`) would survive generation; it fails here, naming file and line."""
    covered = {generator.TEMPLATE_MODULE, generator.TEMPLATE_SLUG, generator.TEMPLATE_MODEL}
    uncovered = []
    for relative in tracked():
        if generator.is_excluded(relative) or relative == "uv.lock":
            continue
        text = (ROOT / relative).read_text(encoding="utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), start=1):
            for match in OLD_NAME.finditer(line):
                if match.group(0) not in covered:
                    uncovered.append(f"{relative}:{number}: {match.group(0)!r}")
    assert not uncovered, "old names no rule renames:\n" + "\n".join(uncovered)


def test_cookiecutter_json_prompts_and_defaults() -> None:
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(str(ROOT / "cookiecutter.json"))
    assert set(context["cookiecutter"]) - {"__prompts__"} == set(GOOD)
    assert set(context["cookiecutter"]["__prompts__"]) == set(GOOD)
    defaults = prompt_for_config(context, no_input=True)
    assert defaults["project_slug"] == "my-mlops-project"
    assert defaults["module_name"] == "my_mlops_project"
    assert defaults["target_column"] == sample_data.TARGET
    assert defaults["registered_model_name"] == "my-mlops-project-classifier"
    assert defaults["data_path"] == generator.TEMPLATE_DATA_PATH
    assert defaults["mlflow_tracking_uri"] == defaults["dvc_remote_url"] == ""
    generator.validate(defaults)

    context = generate_context(
        str(ROOT / "cookiecutter.json"), extra_context={"task_type": "regression"}
    )
    regression = prompt_for_config(context, no_input=True)
    assert regression["target_column"] == sample_data.REGRESSION_TARGET
    assert regression["registered_model_name"] == "my-mlops-project-regressor"


def shared_bootstrap(hook: str) -> str:
    text = (ROOT / "hooks" / hook).read_text()
    return text[text.index("# --- shared bootstrap") : text.index("# --- end of shared bootstrap")]


def test_hooks_share_one_bootstrap_and_keep_jinja_to_one_line() -> None:
    assert shared_bootstrap("pre_gen_project.py") == shared_bootstrap("post_gen_project.py")
    for hook in ("pre_gen_project.py", "post_gen_project.py"):
        jinja = [line for line in (ROOT / "hooks" / hook).read_text().splitlines() if "{{" in line]
        assert jinja == ['CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")'], hook
    placeholder = ROOT / "{{cookiecutter.project_slug}}"
    assert [p.name for p in placeholder.iterdir()] == [generator.PLACEHOLDER]


# --- validation -------------------------------------------------------------------------------


def test_good_answers_pass() -> None:
    assert answers().data_stem == "activities"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("project_slug", "Delay_Forecast", "project_slug"),
        ("project_slug", "delay--forecast", "project_slug"),
        ("project_slug", "-delay", "project_slug"),
        ("module_name", "delay-forecast", "lowercase Python identifier"),
        ("module_name", "2delay", "lowercase Python identifier"),
        ("module_name", "DelayForecast", "lowercase Python identifier"),
        ("module_name", "class", "keyword"),
        ("module_name", "match", "keyword"),
        ("module_name", "test", "standard library"),
        ("module_name", "json", "standard library"),
        ("module_name", "mlflow", "shadow a dependency"),
        ("module_name", "tests", "shadow a dependency"),
        ("module_name", "git", "shadow a dependency"),  # GitPython's import name
        ("module_name", "arrow", "shadow a dependency"),  # a distribution in uv.lock
        ("project_slug", "arrow", "a package the project depends on"),
        ("project_slug", "scikit-learn", "a package the project depends on"),
        ("project_name", "", "must not be empty"),
        ("description", "two\nlines", "single line"),
        ("author_name", " padded", "leading/trailing"),
        ("author_email", "not-an-email", "e-mail"),
        ("license", "GPL", "license"),
        ("python_version", "3.10", "python_version"),
        ("task_type", "clustering", "task_type"),
        ("target_column", "", "must not be empty"),
        ("data_path", "elsewhere/x.csv", "directly under data/"),
        ("data_path", "data/x.parquet", "directly under data/"),
        ("data_path", "data/sub/x.csv", "directly under data/"),
        ("data_path", "data/../x.csv", "directly under data/"),
        ("mlflow_tracking_uri", "https://user:secret@mlflow.example.com", "credentials"),
        ("mlflow_tracking_uri", "mlflow.example.com", "needs a scheme"),
        ("dvc_remote_url", "relative/dir", "absolute local path"),
        ("dvc_remote_url", "s3://key:secret@bucket/x", "credentials"),
        ("registered_model_name", "my model", "registered_model_name"),
    ],
)
def test_bad_answer_is_rejected_with_its_field(field: str, value: str, message: str) -> None:
    with pytest.raises(generator.GenerationError) as error:
        answers(**{field: value})
    assert field in str(error.value)
    assert message in str(error.value)


def test_every_import_name_of_a_locked_package_is_reserved() -> None:
    """RESERVED_MODULES lists the import names that are not distribution names of uv.lock: the
    environment these tests run in is that lock's, so a new dependency shows up here."""
    from importlib.metadata import packages_distributions

    locked = generator.locked_names()
    missing = sorted(
        module
        for module, distributions in packages_distributions().items()
        if generator.MODULE.match(module)
        and any(generator._normalise(d) in locked for d in distributions)
        and module not in locked
        and module not in generator.RESERVED_MODULES
    )
    assert not missing, f"add to RESERVED_MODULES in hooks/_project_generator.py: {missing}"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(generator.GenerationError) as error:
        answers(project_slug="Bad Slug", module_name="class", task_type="x")
    assert str(error.value).count("\n  - ") == 3


# --- names ------------------------------------------------------------------------------------


def test_rename_is_one_pass_and_longest_first() -> None:
    new = answers(
        project_slug="construction-delays-v2",
        module_name="construction_delays_v2",
        registered_model_name="construction-delays-classifier-v2",
        data_path="data/construction_activities_v2.csv",
    )
    replacements = generator.name_replacements(new)
    text = (
        "import construction_delays.cli\nname = construction-delays\n"
        "model construction-delays-classifier\npath data/construction_activities.csv\n"
        "dataset construction_activities-training\n"
    )
    assert generator.rename(text, replacements) == (
        "import construction_delays_v2.cli\nname = construction-delays-v2\n"
        "model construction-delays-classifier-v2\npath data/construction_activities_v2.csv\n"
        "dataset construction_activities_v2-training\n"
    )
    assert generator.target_path("src/construction_delays/cli.py", replacements) == (
        "src/construction_delays_v2/cli.py"
    )


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("cookiecutter.json", True),
        ("hooks/post_gen_project.py", True),
        ("{{cookiecutter.project_slug}}/.cookiecutter-placeholder", True),
        ("tests/template/test_generator.py", True),
        ("dvc.lock", True),
        ("reports/metrics.json", True),
        ("reports/plots/roc.json", True),
        ("tests/templates.py", False),
        ("tests/code/test_config.py", False),
        ("data.dvc", False),
        ("src/construction_delays/report.py", False),
        ("hooks.md", False),
    ],
)
def test_exclusions(path: str, excluded: bool) -> None:
    assert generator.is_excluded(path) is excluded


# --- file edits -------------------------------------------------------------------------------


def test_params_yaml_ships_the_default_zoo_of_its_task() -> None:
    # The hook that generates a regression project and `adopt` both take the zoo from MODEL_ZOOS.
    text = (ROOT / "params.yaml").read_text()
    task = yaml.safe_load(text)["data"].get("task", "classification")
    assert top_level_block(text, "models") == MODEL_ZOOS[task]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_edited_params_are_valid_for_the_task(task: str) -> None:
    target = generator.SAMPLE_TARGETS[task]
    new = answers(task_type=task, target_column=target)
    text = generator.edit_params((ROOT / "params.yaml").read_text(), new)
    params = parse_params(yaml.safe_load(text))
    assert params.data.task == task
    assert params.data.target == target
    assert params.data.path == "data/activities.csv"
    assert params.mlflow.experiment == "delay-forecast"
    assert params.mlflow.registered_model == "delay-forecast-regressor"
    if task == "regression":
        assert params.data.positive_class is None
        assert params.evaluate.metric == "rmse"
        assert set(params.gates.metrics) == set(params.gates.max_regression) == {"rmse", "r2"}
        assert set(params.monitoring.max_metric_drop) == {"rmse", "r2"}
        assert {spec.estimator.rsplit(".", 1)[1] for spec in params.enabled_models.values()} == {
            "Ridge",
            "DecisionTreeRegressor",
            "RandomForestRegressor",
            "HistGradientBoostingRegressor",
        }
    else:
        assert (
            params.models == parse_params(yaml.safe_load((ROOT / "params.yaml").read_text())).models
        )
    # Comments stay, at their column.
    assert re.search(r"^  task: \w+ +# classification \| regression$", text, re.MULTILINE)


@pytest.mark.parametrize(
    ("target", "written"),
    [
        ("Delay (days)", "Delay (days)"),
        ("churned", "churned"),
        ("yes", '"yes"'),
        ("price: usd", '"price: usd"'),
        ("#id", '"#id"'),
        ("ünits", '"ünits"'),
    ],
)
def test_target_is_written_as_a_yaml_scalar(target: str, written: str) -> None:
    text = generator.edit_params((ROOT / "params.yaml").read_text(), answers(target_column=target))
    assert f"  target: {written}\n" in text
    assert yaml.safe_load(text)["data"]["target"] == target


def test_params_edit_fails_loudly_when_an_anchor_is_gone() -> None:
    with pytest.raises(generator.GenerationError, match="template changed"):
        generator.edit_params("data:\n  path: x\n  target: y\n  task: c\n", answers())


def test_pyproject_edit() -> None:
    text = generator.edit_pyproject((ROOT / "pyproject.toml").read_text(), answers())
    project = tomllib.loads(text)["project"]
    assert project["description"] == GOOD["description"]
    assert project["authors"] == [{"name": "Ada Lovelace", "email": "ada@example.com"}]
    assert project["license"] == "Apache-2.0"
    assert (
        project["requires-python"]
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )  # the lock is resolved for this range
    proprietary = generator.edit_pyproject(
        (ROOT / "pyproject.toml").read_text(), answers(license="Proprietary", author_email="")
    )
    assert tomllib.loads(proprietary)["project"]["license"] == "LicenseRef-Proprietary"
    assert tomllib.loads(proprietary)["project"]["authors"] == [{"name": "Ada Lovelace"}]


def test_workflows_get_the_python_version() -> None:
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.y*ml")):
        text = generator.edit_workflow(workflow.read_text(), answers(python_version="3.12"))
        assert '"3.11"' not in text, workflow.name
        versions = re.findall(r'(?:UV_PYTHON|python-version): "(3\.\d+)"', text)
        assert versions and set(versions) == {"3.12"}, workflow.name


def test_dvc_config_gets_a_default_remote_only_when_asked() -> None:
    config = (ROOT / ".dvc" / "config").read_text()
    assert generator.edit_dvc_config(config, answers(dvc_remote_url="")) == config
    text = generator.edit_dvc_config(config, answers())
    assert "[core]\n    remote = storage\n" in text
    assert text.endswith("['remote \"storage\"']\n    url = s3://bucket/delay-forecast\n")


def test_data_dvc_is_rehashed_for_another_file_name() -> None:
    dvc_file, lock = (ROOT / "data.dvc").read_text(), (ROOT / "dvc.lock").read_text()
    assert (
        generator.edit_data_dvc(dvc_file, answers(data_path=generator.TEMPLATE_DATA_PATH), lock)
        == dvc_file
    )
    renamed = yaml.safe_load(generator.edit_data_dvc(dvc_file, answers(), lock))["outs"][0]
    recorded = yaml.safe_load(dvc_file)["outs"][0]
    assert renamed["md5"] != recorded["md5"] and renamed["size"] == recorded["size"]
    data_entry = re.compile(r"(- path: data/construction_activities.csv\n\s+hash: md5\n\s+md5: )\w")
    assert data_entry.search(lock)
    for stale in (None, data_entry.sub(r"\g<1>f", lock)):
        with pytest.raises(generator.GenerationError, match="disagree"):
            generator.edit_data_dvc(dvc_file, answers(), stale)


README = """# old-name: a template

Intro about being a template.

## Two commands

Run it.

<!-- template-only:start -->
## Start a new project

cookiecutter ...
<!-- template-only:end -->

## Layout

Files.
"""


def test_readme_drops_template_only_blocks_and_gets_its_own_intro() -> None:
    text = generator.edit_readme(README, answers())
    assert text.startswith(f"# Delay Forecast\n\n{GOOD['description']}\n\n")
    assert "template-only" not in text and "Start a new project" not in text
    assert "Intro about being a template" not in text
    assert "## Two commands\n\nRun it.\n\n## Layout\n\nFiles.\n\n## Project settings\n" in text
    assert "https://mlflow.example.com" in text and "s3://bucket/delay-forecast" in text
    regression = generator.edit_readme(README, answers(task_type="regression"))
    assert "its metrics are `mae`, `rmse` and `r2`" in regression
    classification = answers(task_type="classification", target_column="Schedule Adherence")
    assert "`rmse`" not in generator.edit_readme(README, classification)


def test_readme_with_an_unmatched_marker_fails() -> None:
    broken = README.replace("<!-- template-only:end -->\n", "")
    with pytest.raises(generator.GenerationError, match="unmatched"):
        generator.edit_readme(broken, answers())


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("gh:acme/mlops-template", "https://github.com/acme/mlops-template.git"),
        ("https://github.com/acme/mlops-template", "https://github.com/acme/mlops-template"),
        ("git+ssh://git@host/acme/t.git", "ssh://git@host/acme/t.git"),
        ("git@github.com:acme/t.git", "git@github.com:acme/t.git"),
        ("../relative/template", "/abs/template"),
    ],
)
def test_template_url_is_what_cruft_can_clone_later(given: str, recorded: str) -> None:
    assert generator.template_url(given, Path("/abs/template")) == recorded


def test_cruft_state_keeps_answers_and_drops_cookiecutter_internals() -> None:
    context = {**GOOD, "_repo_dir": "/x", "_output_dir": "/y", "_checkout": None, "__prompts__": {}}
    state = generator.cruft_state(context, answers(), "https://example.com/t.git", "a" * 40)
    assert state["commit"] == "a" * 40
    assert state["context"]["cookiecutter"] == {
        **GOOD,
        "_template": "https://example.com/t.git",
        "_commit": "a" * 40,
    }
    json.dumps(state)


def test_next_steps_adopt_the_team_s_table_when_the_target_is_not_the_sample_s() -> None:
    sample = generator.next_steps(answers(), Path("/tmp/delay-forecast"))
    assert "  cd delay-forecast && make run && make test\n" in sample
    custom = generator.next_steps(answers(target_column="Finished Late"), Path("/tmp/df"))
    # `make run` first would regenerate the sample, which has no 'Finished Late' column.
    assert (
        "  cd df && make adopt ADOPT_FILE=<your table.csv> ADOPT_TARGET='Finished Late'"
        " && make run && make test\n" in custom
    )


def test_the_html_of_dvc_plots_is_ignored_here_and_in_a_generated_project() -> None:
    """`dvc plots diff main` (cited by the README) writes dvc_plots/: not something to commit."""
    import subprocess

    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0
    gitignore = (ROOT / ".gitignore").read_text()
    replacements = generator.name_replacements(answers())
    generated = generator.edit_file(
        ".gitignore", generator.rename(gitignore, replacements), answers(), None
    )
    assert "/dvc_plots/" in generated.splitlines()


def test_next_steps_ask_for_the_dvc_remote_s_credentials_only_when_there_is_a_remote() -> None:
    with_remote = generator.next_steps(answers(), Path("/tmp/df"))
    assert "  - the DVC remote's credentials as secrets" in with_remote
    assert "read-only ones for pull requests (PR_AWS_ACCESS_KEY_ID/" in with_remote
    without = generator.next_steps(answers(dvc_remote_url=""), Path("/tmp/df"))
    assert "DVC remote" not in without
    assert "  - an environment `staging` (reviewers) for promotion\n" in without


def test_the_readme_layout_lists_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    modules = sorted(p.name for p in (ROOT / "src" / generator.TEMPLATE_MODULE).glob("*.py"))
    missing = [m for m in modules if m != "__init__.py" and f"  {m} " not in layout]
    assert not missing, f"README.md Layout: add {missing}"


@pytest.mark.parametrize(
    ("license_name", "first_line"),
    [
        ("MIT", "MIT License"),
        ("BSD-3-Clause", "BSD 3-Clause License"),
        ("Apache-2.0", "                                 Apache License"),
        ("Proprietary", "Copyright (c) 2031 Ada Lovelace. All rights reserved."),
    ],
)
def test_license_file_holds_the_chosen_license_year_and_author(
    license_name: str, first_line: str
) -> None:
    text = generator.license_text(answers(license=license_name, author_name="Ada Lovelace"), 2031)
    assert text.splitlines()[0] == first_line
    assert "2031" in text and "Ada Lovelace" in text and text.endswith("\n")
    if license_name == "Apache-2.0":
        assert "END OF TERMS AND CONDITIONS" in text and "Copyright 2031 Ada Lovelace" in text


def test_the_template_s_license_file_is_what_pyproject_declares() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
