"""What a failed run puts back: the uncached outputs are read from dvc.yaml as DVC reads them."""

from __future__ import annotations

from pathlib import Path

import yaml

from construction_delays.last_good import LastGoodState, uncached_outputs

from tests.conftest import ROOT


def dvc_own_listing(root: Path) -> list[str]:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return sorted(
            str(Path(out.fs_path).relative_to(root.resolve()))
            for stage in repo.index.stages
            for out in stage.outs
            if not out.use_cache
        )


def test_the_projects_uncached_outputs_are_the_ones_dvc_sees() -> None:
    assert sorted(uncached_outputs(ROOT)) == dvc_own_listing(ROOT)


def test_templated_outputs_of_foreach_stages_are_found(tmp_path: Path) -> None:
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True)
    stage = {
        "foreach": ["a", "b"],
        "do": {
            "cmd": "echo ${item}",
            "outs": ["cached/${item}.txt", {"scores/${item}.json": {"cache": False}}],
        },
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": stage}}))
    lock = {
        "schema": "2.0",
        "stages": {
            f"make@{item}": {
                "cmd": f"echo {item}",
                "outs": [
                    {"path": f"cached/{item}.txt", "md5": "0" * 32, "size": 1},
                    {"path": f"scores/{item}.json", "md5": "1" * 32, "size": 1},
                ],
            }
            for item in ("a", "b")
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))

    assert sorted(uncached_outputs(tmp_path)) == ["scores/a.json", "scores/b.json"]
    assert sorted(uncached_outputs(tmp_path)) == dvc_own_listing(tmp_path)


def test_restore_puts_back_files_and_folders_and_removes_new_ones(tmp_path: Path) -> None:
    pipeline = {
        "stages": {
            "report": {
                "cmd": "true",
                "metrics": [{"m.json": {"cache": False}}],
                "plots": [{"plots": {"cache": False}}],
            }
        }
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "m.json").write_text("old")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.json").write_text("old a")
    state = LastGoodState(tmp_path)
    state.save()
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "m.json").write_text("new")
    (tmp_path / "plots" / "b.json").write_text("new b")
    checked_out = []

    state.restore(lambda: checked_out.append(True))
    state.discard()

    assert (tmp_path / "dvc.lock").read_text() == "schema: '2.0'\n"
    assert (tmp_path / "m.json").read_text() == "old"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["a.json"]
    assert checked_out == [True]
