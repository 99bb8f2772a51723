"""The configs ship inside the package: group names, ``--config NAME``, ``--config-dir``,
``--print-config`` and the bare ``hhml-train`` work without a checkout's ``configs/``.

The subprocess tests run with the working directory and ``HOME`` in a temporary directory,
so no ``configs/`` directory is reachable from the working directory; only the packaged
configs (:func:`hhml.config.loader.packaged_config_root`) can answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hhml.cli.baselines import main as baselines_main
from hhml.cli.train import main as train_main
from hhml.config.loader import (
    available_experiments,
    dump_config,
    load_config,
    packaged_config_root,
    resolve_config,
)
from hhml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = packaged_config_root()
QUICKSTART = PACKAGED / "experiment" / "quickstart.yaml"


def run_outside(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` with cwd and HOME in ``tmp_path`` (no configs/ reachable)."""
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_packaged_root_is_the_package_directory_and_the_checkout_links_to_it() -> None:
    import hhml

    assert Path(hhml.__file__).parent / "configs" == PACKAGED
    assert QUICKSTART.is_file()
    # the repository's configs/ is a link to the packaged tree, so both are one tree
    assert (ROOT / "configs").resolve() == PACKAGED.resolve()


def test_group_names_and_experiments_resolve_outside_a_checkout(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        from hhml.config.loader import load_config, packaged_config_root
        cfg = load_config(None, ["lattice=env", "agent=sac"])
        print(cfg.lattice.strips, cfg.agent.algorithm)
        quick = load_config("quickstart")
        print(quick.env.num_envs, quick.training.total_steps)
        print(packaged_config_root())
        """)
    done = run_outside(tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr
    groups, quick, root = done.stdout.splitlines()
    # configs/lattice/env.yaml: 2 strips; configs/agent/sac.yaml: algorithm sac
    assert groups == "2 sac"
    # configs/experiment/quickstart.yaml: 8 envs (env/mobius.yaml), 4000 steps
    assert quick == "8 4000"
    assert Path(root) == PACKAGED


def test_print_config_of_a_named_experiment_outside_a_checkout(tmp_path: Path) -> None:
    done = run_outside(tmp_path, "-m", "hhml.cli.train", "--config", "quickstart", "--print-config")
    assert done.returncode == 0, done.stderr
    printed = yaml.safe_load(done.stdout)
    for section in ("lattice", "dynamics", "simulation", "env", "agent", "training"):
        assert section in printed
    assert done.stdout == dump_config(load_config(QUICKSTART))
    assert not list(tmp_path.iterdir()), "--print-config must not write anything"


def test_unknown_experiment_exits_2_listing_the_experiments(tmp_path: Path) -> None:
    done = run_outside(tmp_path, "-m", "hhml.cli.train", "--config", "nosuch")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hhml-train: error: --config nosuch")
    assert "available experiments: " in lines[0] and "quickstart" in lines[0]
    assert not list(tmp_path.iterdir())


def test_resolve_config_and_its_errors(tmp_path: Path) -> None:
    assert resolve_config("quickstart") == QUICKSTART
    own = tmp_path / "mine.yaml"
    own.write_text("training:\n  total_steps: 10\n")
    assert resolve_config(own) == own  # an existing file is taken as given
    assert "quickstart" in available_experiments()
    with pytest.raises(ConfigError, match=r"quickstrt.*did you mean 'quickstart'"):
        resolve_config("quickstrt")
    with pytest.raises(ConfigError, match=r"^absent\.yaml: no such file$"):
        resolve_config("absent.yaml")  # a path is never looked up as an experiment
    with pytest.raises(ConfigError, match=r"config directory .* does not exist"):
        resolve_config("quickstart", tmp_path / "nope")


@pytest.fixture()
def user_dir(tmp_path: Path) -> Path:
    """A user config directory: a new agent option, a shadowed td3, an own experiment."""
    root = tmp_path / "mine"
    (root / "agent").mkdir(parents=True)
    (root / "experiment").mkdir()
    (root / "agent" / "mine.yaml").write_text("algorithm: sac\nhidden_size: 24\ntau: 0.02\n")
    (root / "agent" / "td3.yaml").write_text("algorithm: td3\nhidden_size: 40\ntau: 0.03\n")
    (root / "experiment" / "tiny.yaml").write_text(
        "defaults:\n  - experiment: quickstart\ntraining:\n  total_steps: 300\n"
    )
    return root


def test_config_dir_adds_and_overrides_groups(user_dir: Path) -> None:
    assert load_config(None, ["agent=mine"], config_dir=user_dir).agent.hidden_size == 24
    assert load_config(None, ["agent=td3"], config_dir=user_dir).agent.hidden_size == 40
    # without it, td3 is the packaged file (hidden_size: 256) and 'mine' does not exist
    assert load_config(None, ["agent=td3"]).agent.hidden_size == 256
    with pytest.raises(ConfigError, match=r"no option 'mine'.*available: recurrent_td3, sac"):
        load_config(None, ["agent=mine"])
    # other groups fall back to the packaged ones; an own experiment builds on a packaged one
    tiny = load_config("tiny", config_dir=user_dir)
    assert tiny.training.total_steps == 300 and tiny.lattice.strips == 2
    assert "tiny" in available_experiments(user_dir)
    # the user's td3 also replaces the one a packaged experiment selects (quickstart's own
    # keys set agent.hidden_size, so compare a key it leaves to the group file: tau)
    (user_dir / "agent" / "td3.yaml").write_text("algorithm: td3\ntau: 0.25\n")
    assert load_config("quickstart", config_dir=user_dir).agent.tau == 0.25
    assert load_config("quickstart").agent.tau == 0.005


def test_train_cli_config_dir(
    user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["--config-dir", str(user_dir), "--print-config"]
    mine = runner.invoke(train_main, [*args, "lattice=env", "agent=mine"])
    assert mine.exit_code == 0, mine.output
    # no --config: the quickstart, whose own agent.hidden_size (64) wins over the group
    # file's; tau it leaves to the group
    agent = yaml.safe_load(mine.stdout)["agent"]
    assert agent["algorithm"] == "sac" and agent["tau"] == 0.02 and agent["hidden_size"] == 64
    td3 = runner.invoke(train_main, [*args, "agent=td3"])
    assert td3.exit_code == 0, td3.output
    assert yaml.safe_load(td3.stdout)["agent"]["tau"] == 0.03
    tiny = runner.invoke(train_main, [*args, "--config", "tiny"])
    assert tiny.exit_code == 0, tiny.output
    assert yaml.safe_load(tiny.stdout)["training"]["total_steps"] == 300
    missing = runner.invoke(train_main, ["--config-dir", str(tmp_path / "nope"), "--print-config"])
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_bare_train_uses_the_quickstart_experiment_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(train_main, ["--print-config"])
    assert result.exit_code == 0, result.output
    assert result.stdout == dump_config(load_config(QUICKSTART))
    notice = result.stderr.strip().splitlines()
    assert len(notice) == 1 and "quickstart" in notice[0] and "no --config" in notice[0]
    quiet = CliRunner().invoke(train_main, ["-q", "--print-config"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    # with OVERRIDES and no --config, the overrides apply to the quickstart too
    plain = CliRunner().invoke(train_main, ["--print-config", "training.total_steps=7"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == dump_config(load_config(QUICKSTART, ["training.total_steps=7"]))
    notice = plain.stderr.strip().splitlines()
    assert len(notice) == 1 and "quickstart" in notice[0] and "no --config" in notice[0]
    assert "--config-dir" in CliRunner().invoke(train_main, ["--help"]).output


def test_print_config_refuses_sweep_and_resume_with_config_dir(tmp_path: Path) -> None:
    runner = CliRunner()
    sweep = runner.invoke(train_main, ["--sweep", str(tmp_path / "s.yaml"), "--print-config"])
    assert sweep.exit_code == 2 and "--print-config" in sweep.stderr
    resume = runner.invoke(train_main, ["--resume", str(tmp_path), "--config-dir", str(tmp_path)])
    assert resume.exit_code == 2 and "--config-dir" in resume.stderr


def test_baselines_accepts_experiment_names_and_prints_the_config(user_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(baselines_main, ["quickstart", "--print-config"])
    assert result.exit_code == 0, result.output
    assert result.stdout == dump_config(load_config(QUICKSTART))
    own = runner.invoke(
        baselines_main, ["tiny", "--config-dir", str(user_dir), "--print-config", "agent=td3"]
    )
    assert own.exit_code == 0, own.output
    printed = yaml.safe_load(own.stdout)
    assert printed["training"]["total_steps"] == 300
    unknown = runner.invoke(baselines_main, ["nosuch"])
    assert unknown.exit_code == 2
    assert "available experiments: " in unknown.stderr


def test_the_wheel_holds_every_packaged_config(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources (the checkout stays untouched; ~1.5 s)."""
    source = tmp_path / "src_copy"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so", "build"),
    )
    out = tmp_path / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
         "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("hhml-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        listed = {n for n in archive.namelist() if n.startswith("hhml/configs/")}
    expected = {
        f"hhml/configs/{p.relative_to(PACKAGED).as_posix()}" for p in PACKAGED.rglob("*.yaml")
    }
    assert len(expected) >= 25
    assert listed == expected
    assert "hhml/configs/experiment/quickstart.yaml" in listed
