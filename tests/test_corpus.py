"""The shipped sample pack: its format, the integrity checks, the filters, and install -> CLIGym-v0 -> rewards."""

from __future__ import annotations

import random
import shutil
from importlib import resources
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from cligym_env.cli import app
from cligym_env.corpus import install as installer
from cligym_env.corpus.pack import PACK_FILE, WHEELS_DIR, load_pack
from cligym_env.error import PackError, PackFilterError, PackIntegrityError
from cligym_env.images.recipes import find_recipe
from cligym_env.runtime.shell import script_command
from cligym_env.tasks import Environment, Registry

SAMPLE = "cligym-v0-sample"
runner = CliRunner()


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "pack"
    shutil.copytree(load_pack(SAMPLE).path, folder)
    return folder


def test_the_sample_pack_reads_and_every_breakage_has_a_gold_and_a_split() -> None:
    pack = load_pack(SAMPLE)
    assert pack.breakages and set(pack.projects) == set(pack.golds)
    assert {b.project for b in pack.breakages} <= set(pack.projects)
    assert {pack.split_of(p) for p in pack.projects} == {"train", "heldout"}
    for gold in pack.golds.values():
        assert gold.sdist.sha256 and all(len(w.sha256) == 64 for w in gold.wheels)
        assert all((pack.path / WHEELS_DIR / w.filename).is_file() for w in gold.wheels if w.source == "pack")


@pytest.mark.parametrize("filters, value", [
    ({"projects": ["no-such-project"]}, "no-such-project"), ({"category": "filesystem"}, "filesystem"),
    ({"split": "test"}, "test"), ({"limit": 0}, "0")])
def test_a_bad_filter_is_one_error_naming_the_value(filters: dict, value: str) -> None:
    with pytest.raises(PackFilterError, match=f"'?{value}'?"):
        installer.select(load_pack(SAMPLE), **filters)


def test_the_cli_turns_a_bad_filter_into_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tasks", "install", SAMPLE, "--project", "nope", "--registry", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "'nope'" in result.output and "choose from" in result.output and "Traceback" not in result.output


def test_an_unknown_pack_and_a_newer_schema_are_refused(pack_copy: Path) -> None:
    with pytest.raises(PackError, match="no task pack 'cligym-v9'"):
        load_pack("cligym-v9")
    (pack_copy / PACK_FILE).write_text((pack_copy / PACK_FILE).read_text().replace("schema = 1", "schema = 3"))
    with pytest.raises(PackError, match="schema 3 is not supported"):
        load_pack(pack_copy)


def test_a_wheel_that_does_not_match_its_pinned_hash_is_refused(pack_copy: Path, tmp_path: Path) -> None:
    pack = load_pack(pack_copy)
    gold = next(g for g in pack.golds.values() if any(w.source == "pack" for w in g.wheels))
    wheel = next(w for w in gold.wheels if w.source == "pack")
    path = pack_copy / WHEELS_DIR / wheel.filename
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(PackIntegrityError, match=f"{wheel.filename} has sha256 .* but the pack pins {wheel.sha256}"):
        installer.install(pack_copy, Registry(tmp_path / "r"), projects=[gold.project])
    assert not list((tmp_path / "r").glob(f"{gold.project}-*"))


def test_an_sdist_that_does_not_match_its_pinned_hash_is_refused(cligym_home: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIGYM_CACHE", str(cligym_home / "cache"))  # its own cache: this one gets corrupted
    pack = load_pack(SAMPLE)
    gold = pack.golds[sorted(pack.golds)[0]]
    cached = cligym_home / "cache" / "sdists" / f"{gold.project}-{gold.version}" / gold.sdist.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the release")  # e.g. a corrupted download in the cache
    with pytest.raises(PackIntegrityError, match=f"{gold.sdist.filename} has sha256 .* pins {gold.sdist.sha256}"):
        installer.install(pack, Registry(tmp_path / "r"), projects=[gold.project])


@pytest.mark.timeout(330)  # 4 episodes: 97 s measured at load ~5, 205-240 s at load 14
def test_install_without_docker_then_oracle_1_and_noop_0_through_gym_make(
        cligym_home: Path, monkeypatch: pytest.MonkeyPatch, docker_client) -> None:
    pack = load_pack(SAMPLE)
    project = sorted(pack.projects)[0]
    with monkeypatch.context() as offline:  # any Docker call during the install would fail
        offline.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        result = runner.invoke(app, ["tasks", "install", SAMPLE, "--project", project])
    assert result.exit_code == 0, result.output
    registry = Registry(cligym_home / "tasks")
    rows = registry.query(project=project)
    expected = 2 * sum(b.project == project for b in pack.breakages)
    assert len(rows) == expected and not any(registry.query(project=p) for p in pack.projects if p != project)
    task = registry.get(rows[0]["id"])
    assert task.metadata.extra["pack"] == SAMPLE and task.metadata.extra["split"] == pack.split_of(project)
    assert task.tests.files and len(task.tests.selected) == len(pack.golds[project].passing)
    # The FROM gold image is rebuildable from the installed recipe: same content, same tag.
    dockerfile, files = find_recipe(pack.golds[project].image)
    assert f"{pack.golds[project].image.split(':')[0]}:{Environment(dockerfile, files).content_hash()[:24]}" == \
        pack.golds[project].image

    chosen = [rows[0]["id"], rows[-1]["id"]]  # a no-hint and a hint variant (of different breakages if 2+)
    built = runner.invoke(app, ["tasks", "install", SAMPLE, "--project", project, "--limit", "1", "--build"])
    assert built.exit_code == 0, built.output  # the images of the first task, now: its gold from the recipe
    assert docker_client.images.get(pack.golds[project].image)
    env = gym.make("CLIGym-v0", task_ids=chosen, max_steps=5, command_timeout=120)
    try:
        for task_id in chosen:
            env.reset(options={"task_id": task_id})
            env.step(script_command(registry.get(task_id).solution))
            assert env.step("submit")[1] == 1.0, task_id
            env.reset(options={"task_id": task_id})
            assert env.step("submit")[1] == 0.0, task_id
    finally:
        env.close()


def test_gym_make_selects_a_split_of_an_installed_pack(cligym_home: Path) -> None:
    """Held-out projects (evaluation only) and training projects are chosen by `split=`; no Docker needed."""
    from cligym_env.error import ConfigError

    pack = load_pack(SAMPLE)
    result = runner.invoke(app, ["tasks", "install", SAMPLE])
    assert result.exit_code == 0, result.output
    for split in ("train", "heldout"):
        projects = {p for p in pack.projects if pack.split_of(p) == split}
        env = gym.make("CLIGym-v0", split=split)
        chosen = env.unwrapped.task_ids
        assert chosen and {env.unwrapped.registry.get(t).metadata.project for t in chosen} == projects
        assert len(chosen) == 2 * sum(b.project in projects for b in pack.breakages)
        env.close()
    with pytest.raises(ConfigError, match="split='test'.*train, heldout"):
        gym.make("CLIGym-v0", split="test")


def test_a_whole_suite_breakage_is_written_as_the_complement_and_read_back_the_same(tmp_path: Path) -> None:
    """Thousands of parametrized fail-to-pass ids would blow the size budget: the line lists what still passes."""
    from dataclasses import replace as copy

    from cligym_env.corpus.pack import TASKS_FILE, write_pack

    pack = load_pack(SAMPLE)
    breakage = pack.breakages[0]
    passing = pack.golds[breakage.project].passing
    wide = copy(breakage, fail_to_pass=tuple(sorted(passing[1:])), pass_to_pass=None)
    narrow = copy(pack.breakages[1], pass_to_pass=None)
    folder = write_pack(copy(pack, breakages=(wide, narrow)), tmp_path / "pack", {})
    lines = (folder / TASKS_FILE).read_text()
    assert "fail_to_pass_except" in lines and passing[-1] not in lines.split(wide.id)[1].split("\n")[0]
    again = {b.id: b for b in load_pack(folder).breakages}
    assert again[wide.id].fail_to_pass == wide.fail_to_pass
    assert again[narrow.id].fail_to_pass == narrow.fail_to_pass


def test_a_rebuilt_pack_keeps_every_projects_split() -> None:
    """A project trained on in one version is never held out in the next; new projects top the share up."""
    from cligym_env.corpus.build import _splits

    old = ["apispec", "click", "glom", "mock", "tenacity"]
    first = _splits(old, {})
    assert sum(split == "heldout" for split in first.values()) == 1
    new = old + [f"project-{n}" for n in range(10)]
    second = _splits(new, first)
    assert all(second[p] == first[p] for p in old)
    assert sum(split == "heldout" for split in second.values()) == 3  # 20% of 15
    assert _splits(new, {p: "heldout" for p in new[:6]})["project-9"] == "train"  # over the share: none added


def test_a_pack_grows_on_its_own_gold(cligym_home: Path, pack_copy: Path, docker_client) -> None:
    """Installed on another host, a pack's gold is generated on as it is (same image, probed there), and the
    rebuilt pack keeps the installed breakages as they were, adds the new one, and keeps one gold per project."""
    from cligym_env.corpus.build import build_pack
    from cligym_env.generator.gold import build_gold
    from cligym_env.generator.operators import propose
    from cligym_env.generator.pipeline import RunLog, generate_for_gold

    old = load_pack(pack_copy)
    project, untouched = "iniconfig", "python-dotenv"  # generated on again; only installed
    assert runner.invoke(app, ["tasks", "install", str(pack_copy)]).exit_code == 0
    gold = build_gold(project, client=docker_client)
    assert gold.image == old.golds[project].image and gold.version == old.golds[project].version
    assert gold.probe.project_module == "iniconfig" and gold.probe.used_modules

    registry = Registry(cligym_home / "tasks")
    candidates = [c for c in propose(gold.probe, random.Random(0), ["file-system"])
                  if c.operator == "delete-module-file"]
    outcomes = generate_for_gold(docker_client, registry, gold, candidates, RunLog(cligym_home / "runs" / "r.jsonl"),
                                 max_tasks=1, workers=1, seed=0)
    assert [o.status for o in outcomes][-1] == "accepted", outcomes

    new = build_pack(old.name, cligym_home / "tasks", pack_copy, version="0.2.0", home=cligym_home)
    before = {b.id: b for b in old.breakages}
    after = {b.id: b for b in new.breakages}
    assert set(before) < set(after) and len(after) == len(before) + 1
    assert all(after[i] == before[i] for i in before)  # packed as they were, figures included
    assert new.golds == old.golds and new.projects == old.projects  # one gold per project, splits kept
    assert {row["project"] for row in new.generation} == {project, untouched}


def test_two_golds_of_one_project_are_refused_by_name() -> None:
    """Tasks of one project built on two gold images (two homes' golds) cannot share the pack's one recipe."""
    from cligym_env.corpus.build import _one_gold
    from cligym_env.tasks import load_task

    recipe = load_pack(SAMPLE).golds["iniconfig"]
    task = load_task(Path(str(resources.files("cligym_env.tasks").joinpath("examples"))) / "example-missing-module")
    _one_gold(task, recipe, recipe.image)
    with pytest.raises(PackError, match="one gold per project"):
        _one_gold(task, recipe, "cligym/gold-iniconfig:other")
