"""The override grammar (``+``/``++``/``~``, lists, ``${...}`` interpolation), ``-m`` sweeps,
configs without ``--config``, and experiment names in sweep files and ``hhml-optimize``.

Values are compared exactly (they are parsed, copied or reset, never computed), against
references taken independently: the schema classes' own defaults, the packaged YAML files
read with ``yaml.safe_load``, or literals.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hhml.cli.train import main as train_main
from hhml.config.agent import AgentConfig
from hhml.config.loader import default_config_dir, dump_config, load_config, packaged_config_root
from hhml.config.overrides import (
    Reference,
    interpolation_parts,
    list_items,
    parse_override,
    split_top_level,
    sweep_items,
)
from hhml.config.training import TrainingConfig
from hhml.errors import ConfigError
from hhml.ml.training.sweep import load_sweep, multirun_sweep

PACKAGED = packaged_config_root()
QUICKSTART = PACKAGED / "experiment" / "quickstart.yaml"
QS = str(QUICKSTART)
QS_YAML = yaml.safe_load(QUICKSTART.read_text())  # the independent reference


def _line(text: str) -> int:
    """The 1-based line of the quickstart file that holds ``text`` (the first one)."""
    lines = QUICKSTART.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def error(path: str | Path | None, overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


# ----------------------------------------------------------------------------- parsing


def test_parse_override_forms() -> None:
    item = parse_override(" ++agent.gamma = 0.9 ")
    assert (item.prefix, item.name, item.value, item.is_group) == (
        "++",
        "agent.gamma",
        "0.9",
        False,
    )
    assert parse_override("+agent=sac").is_group
    reset = parse_override("~lattice")
    assert (reset.prefix, reset.name, reset.value) == ("~", "lattice", None)
    assert parse_override("simulation.output_dir=a=b").value == "a=b"  # first '=' splits


@pytest.mark.parametrize("text", ["+~agent", "~+agent=x", "+++agent=x", "~~lattice.nu"])
def test_one_prefix_at_most(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert str(info.value).startswith(f"malformed override {text!r}: one prefix at most")


@pytest.mark.parametrize("text", ["~", "+", "++", "+agent", "lattice.nu64", "=3"])
def test_malformed_overrides_name_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert str(info.value).startswith(f"malformed override {text!r}")
    assert "'~section.key' / '~group' (reset)" in str(info.value)


def test_splitting_respects_brackets_and_quotes() -> None:
    assert split_top_level("a, [b,c] ,'d,e',f(g,h)", "x") == ["a", "[b,c]", "'d,e'", "f(g,h)"]
    assert sweep_items("td3", "x") == ["td3"]
    assert list_items("[ random , midpoint ]", "x") == ["random", "midpoint"]
    assert list_items("[]", "x") == [] and list_items("random", "x") is None
    with pytest.raises(ConfigError, match=r"unclosed '\[' in '\[a,b' \(x\)"):
        split_top_level("[a,b", "x")
    with pytest.raises(ConfigError, match=r"unbalanced '\]' at character 2 of 'a\]' \(x\)"):
        split_top_level("a]", "x")
    with pytest.raises(ConfigError, match=r"empty or nested item"):
        list_items("[a,[b]]", "x")
    with pytest.raises(ConfigError) as info:
        sweep_items("range(1,4)", "override 'lattice.nu=range(1,4)'")
    assert str(info.value) == (
        "sweep functions such as range(...) are not supported (override "
        "'lattice.nu=range(1,4)'); list the values instead, e.g. key=1,2,3"
    )


def test_interpolation_parts() -> None:
    assert interpolation_parts("${a.b}", "x") == [Reference("a.b")]
    assert interpolation_parts("r-${a.b}-\\${c}", "x") == ["r-", Reference("a.b"), "-${c}"]


# ----------------------------------------------------------------------------- + and ++


def test_plus_forms_mean_the_plain_form() -> None:
    plain = load_config(QS, ["agent=sac", "training.total_steps=7"])
    assert load_config(QS, ["+agent=sac", "++training.total_steps=7"]) == plain
    assert load_config(QS, ["++agent=sac", "+training.total_steps=7"]) == plain
    assert plain.agent.algorithm == "sac" and plain.training.total_steps == 7
    # +group=option adds a group the defaults list lacks (Hydra's +experiment=...)
    assert load_config(None, ["+experiment=quickstart"]) == load_config(QS)
    assert error(QS, ["+training.total_step=3"]) == (
        "unknown key 'training.total_step' in override '+training.total_step=3'; "
        "did you mean 'training.total_steps'?"
    )


# ----------------------------------------------------------------------------- ~


def test_tilde_key_resets_to_the_schema_default() -> None:
    assert QS_YAML["agent"]["hidden_size"] == 64  # quickstart sets it
    cfg = load_config(QS, ["~agent.hidden_size"])
    assert cfg.agent.hidden_size == AgentConfig().hidden_size == 256
    assert load_config(QS, ["~agent.hidden_size=64"]).agent.hidden_size == 256
    # a later override sets it again; a reset of an unset key changes nothing
    assert load_config(QS, ["~agent.hidden_size", "agent.hidden_size=8"]).agent.hidden_size == 8
    assert load_config(QS, ["~agent.tau"]) == load_config(QS)
    assert error(QS, ["~agent.hidden_size=32"]) == (
        f"override '~agent.hidden_size=32': agent.hidden_size is 64 "
        f"(set in {QS}, line {_line('hidden_size: 64')}), "
        "not 32; '~key=value' resets the key only while it holds that value "
        "(write '~key' to reset it anyway)"
    )
    assert error(QS, ["~agent.hiden_size"]) == (
        "unknown key 'agent.hiden_size' in override '~agent.hiden_size'; "
        "did you mean 'agent.hidden_size'?"
    )


def test_tilde_group_drops_the_group() -> None:
    dropped = load_config(QS, ["~agent"])
    # without agent/td3.yaml the agent section is the schema's plus quickstart's own keys
    assert dropped.agent == AgentConfig(**QS_YAML["agent"])
    assert load_config(QS, ["~agent=td3"]) == dropped
    assert error(QS, ["~agent=sac"]) == (
        f"override '~agent=sac': group 'agent' selects 'td3' "
        f"({QS}, line {_line('- agent: td3')}), not 'sac'; "
        "'~group=option' drops the group only while that option is selected "
        "(write '~group' to drop it anyway)"
    )
    assert error(QS, ["~search"]) == (
        "override '~search': the defaults list selects no 'search' group to drop; it selects: "
        "lattice=env, dynamics=cgl, simulation=env, env=mobius, agent=td3, training=quick"
    )


# ----------------------------------------------------------------------------- lists


def test_lists_for_list_keys(tmp_path: Path) -> None:
    cfg = load_config(QS, ["training.baselines=[random, midpoint]"])
    assert cfg.training.baselines == "random,midpoint"
    assert cfg.training.baseline_names() == ["random", "midpoint"]
    assert error(QS, ["training.baselines=[]"]) == (  # the empty list is written 'none'
        "training.baselines = '' is not valid; expected 'all', 'none' or a comma-separated "
        "subset of random,midpoint,constant,schedule (set in override 'training.baselines=[]')"
    )
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  baselines: [schedule, random]\n")
    assert load_config(path).training.baselines == "schedule,random"
    path.write_text("training:\n  baselines: [random, 3]\n")
    assert error(path, []) == (
        "item 1 of training.baselines = ['random', 3] is 3, not a name (set in "
        f"{path}, line 2); expected 'all', 'none' or a comma-separated subset of "
        "random,midpoint,constant,schedule"
    )


def test_a_list_for_a_scalar_key_names_its_type(tmp_path: Path) -> None:
    assert error(QS, ["lattice.nu=[32,64]"]) == (
        "lattice.nu = [32,64] is a list, but lattice.nu holds one value (an integer in "
        "[4, 16384]) (set in override 'lattice.nu=[32,64]'); only list keys take [a,b,...]: "
        "training.baselines; to run one training per value, use hhml-train -m lattice.nu=32,64"
    )
    path = tmp_path / "run.yaml"
    path.write_text("agent:\n  algorithm: [td3, sac]\n")
    assert error(path, []) == (
        "agent.algorithm = ['td3', 'sac'] is a list, but agent.algorithm holds one value "
        f"(one of 'td3', 'sac', 'recurrent_td3') (set in {path}, line 2); only list keys "
        "take a list: training.baselines"
    )


def test_commas_outside_multirun_point_to_it() -> None:
    assert error(QS, ["lattice.nu=32,64"]) == (
        "lattice.nu = '32,64' has the wrong type (str); expected an integer (set in override "
        "'lattice.nu=32,64'); to run one training per comma-separated value, use "
        "hhml-train -m/--multirun"
    )
    assert error(QS, ["agent=td3,sac"]) == (
        "override 'agent=td3,sac': 'td3,sac' names several options, but config group 'agent' "
        "takes one; to run one training per comma-separated value, use hhml-train -m/--multirun"
    )
    # a list key still takes its comma-separated string, as before
    cfg = load_config(QS, ["training.baselines=random,constant"])
    assert cfg.training.baselines == "random,constant"


# ----------------------------------------------------------------------------- ${...}


def test_interpolation_in_files_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(textwrap.dedent("""\
            defaults:
              - lattice: small
            lattice:
              nv: ${lattice.nu}
            training:
              eval_seed: ${training.seed}
              run_name: s${training.seed}-${agent.algorithm}
            """))
    small = yaml.safe_load((PACKAGED / "lattice" / "small.yaml").read_text())
    cfg = load_config(path)
    assert cfg.lattice.nv == cfg.lattice.nu == small["nu"]
    assert cfg.training.run_name == "s0-td3"
    # resolved after merging: later overrides of the referenced keys count
    cfg = load_config(path, ["training.seed=7", "lattice.nu=40", "agent=sac"])
    assert (cfg.lattice.nv, cfg.training.eval_seed, cfg.training.run_name) == (40, 7, "s7-sac")
    # typed by the target key: an int for a float key, text for a string key
    cfg = load_config(QS, ["dynamics.damping=${lattice.nu}", "simulation.output_dir=${lattice.nu}"])
    assert cfg.dynamics.damping == 48.0 and isinstance(cfg.dynamics.damping, float)
    assert cfg.simulation.output_dir == "48"
    # text around an interpolation gives text, parsed as YAML for a non-string key
    assert load_config(QS, ["lattice.nv=1${lattice.nu}"]).lattice.nv == 148
    # a key nobody sets takes its schema default
    cfg = load_config(QS, ["lattice.nv=${training.baseline_segments}"])
    assert cfg.lattice.nv == TrainingConfig().baseline_segments == 4


def test_interpolation_errors_name_the_chain() -> None:
    assert error(QS, ["lattice.nv=${lattice.nu}", "lattice.nu=${lattice.nv}"]) == (
        "interpolation cycle: lattice.nu -> lattice.nv -> lattice.nu (lattice.nu set in "
        "override 'lattice.nu=${lattice.nv}'; lattice.nv set in override "
        "'lattice.nv=${lattice.nu}')"
    )
    assert error(QS, ["lattice.nu=${lattice.nu}"]) == (
        "interpolation cycle: lattice.nu -> lattice.nu (lattice.nu set in override "
        "'lattice.nu=${lattice.nu}')"
    )
    assert error(QS, ["training.eval_seed=${training.seed}", "training.seed=${lattice.nuu}"]) == (
        "unknown key 'lattice.nuu' in interpolation ${lattice.nuu} of training.eval_seed -> "
        "training.seed (set in override 'training.seed=${lattice.nuu}'); "
        "did you mean 'lattice.nu'?"
    )
    assert error(QS, ["lattice.nv=${latice.nu}"]) == (
        "unknown section 'latice' in interpolation ${latice.nu} of lattice.nv (set in "
        "override 'lattice.nv=${latice.nu}'); did you mean 'lattice'?"
    )
    assert error(QS, ["lattice.nu=${dynamics.damping}", "dynamics.damping=0.5"]) == (
        "lattice.nu = 0.5 has the wrong type (float); expected an integer (set in override "
        "'lattice.nu=${dynamics.damping}' as '${dynamics.damping}')"
    )
    assert error(QS, ["lattice.nv=${training.torch_threads}"]) == (
        "lattice.nv = 0 is out of range; allowed [2, 16384] (set in override "
        "'lattice.nv=${training.torch_threads}' as '${training.torch_threads}')"
    )
    assert error(QS, ["training.run_name=${oc.env:HOME}"]) == (
        "interpolation ${oc.env:HOME} in '${oc.env:HOME}' (training.run_name, set in override "
        "'training.run_name=${oc.env:HOME}'): resolvers (${name:...}) are not supported, "
        "e.g. ${training.seed}"
    )
    assert error(QS, ["lattice.nv=${lattice.nu"]) == (
        "unclosed interpolation in '${lattice.nu' (lattice.nv, set in override "
        "'lattice.nv=${lattice.nu'); write ${section.key}"
    )


def test_dump_escapes_literal_interpolations(tmp_path: Path) -> None:
    cfg = load_config(QS, ["simulation.output_dir=out/\\${x}"])
    assert cfg.simulation.output_dir == "out/${x}"
    dumped = tmp_path / "config.yaml"
    dumped.write_text(dump_config(cfg))
    assert "out/\\${x}" in dumped.read_text()
    assert load_config(dumped) == cfg


# ----------------------------------------------------------------------------- CLI


def test_overrides_without_config_apply_to_the_quickstart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(train_main, ["training.total_steps=200", "--print-config"])
    assert result.exit_code == 0, result.output
    assert result.stdout == dump_config(load_config(QUICKSTART, ["training.total_steps=200"]))
    assert (
        yaml.safe_load(result.stdout)["env"]
        == yaml.safe_load(dump_config(load_config(QUICKSTART)))["env"]
    )
    assert result.stderr.strip() == (
        "hhml-train: no --config: applying the OVERRIDES to the quickstart experiment "
        f"({QUICKSTART})"
    )
    hydra = runner.invoke(train_main, ["training.total_steps=200", "--cfg", "job"])
    assert hydra.exit_code == 0 and hydra.stdout == result.stdout
    both = runner.invoke(train_main, ["-m", "agent=td3,sac", "--print-config"])
    assert both.exit_code == 2 and "do not combine it with --resume" in both.stderr


def test_multirun_sweep_expands_the_product_in_override_order() -> None:
    spec = multirun_sweep(
        QS,
        ["agent=td3,sac", "agent.gamma=0.9", "agent.gamma=0.5,0.8", "training.seed=3,1"],
        name="mr",
    )
    assert spec.path is None and spec.name == "mr"
    assert spec.source == (
        "hhml-train -m agent=td3,sac agent.gamma=0.9 agent.gamma=0.5,0.8 training.seed=3,1"
    )
    assert [t.name for t in spec.trials] == [
        "000_agent-td3_gamma-0.5_seed-3",
        "001_agent-td3_gamma-0.5_seed-1",
        "002_agent-td3_gamma-0.8_seed-3",
        "003_agent-td3_gamma-0.8_seed-1",
        "004_agent-sac_gamma-0.5_seed-3",
        "005_agent-sac_gamma-0.5_seed-1",
        "006_agent-sac_gamma-0.8_seed-3",
        "007_agent-sac_gamma-0.8_seed-1",
    ]
    last = spec.trials[-1]
    assert last.overrides == (
        "agent=sac",
        "agent.gamma=0.9",
        "agent.gamma=0.8",
        "training.seed=1",
        "training.run_name=007_agent-sac_gamma-0.8_seed-1",
    )
    assert (last.cfg.agent.algorithm, last.cfg.agent.gamma, last.cfg.training.seed) == (
        "sac",
        0.8,
        1,
    )
    # without training.seed every trial takes the base config's seed
    (only,) = multirun_sweep(QS, ["training.total_steps=9"], name="one").trials
    assert only.seed == 0 and only.cfg.training.total_steps == 9


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["agent.gamma=0.9,0.8", "agent.gamma=0.5,0.6"], "agent.gamma is swept twice"),
        (["~agent.gamma=0.9,0.8"], "'~' resets one key; it cannot be swept"),
        (["training.seed=1,1"], "the seeds must be distinct, got [1, 1]"),
        (["training.seed=a,b"], "seed 'a' (override 'training.seed=a,b') must be an integer"),
        (["lattice.nu=range(1,3)"], "sweep functions such as range(...) are not supported"),
        (["agent=td3,nosuch"], "trial 001_agent-nosuch_seed-0: config group 'agent' has no"),
    ],
)
def test_multirun_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        multirun_sweep(QS, overrides, name="x")
    assert message in str(info.value)


def test_tiny_multirun_writes_a_run_per_combination_and_a_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tiny = [
        "env.num_envs=2",
        "env.horizon=8",
        "agent.hidden_size=8",
        "agent.learning_starts=8",
        "agent.batch_size=8",
        "training.total_steps=16",
        "training.eval_every=0",
        "training.eval_episodes=1",
        "training.log_every=8",
        "training.checkpoint_every=16",
        "training.tensorboard=false",
        "training.baselines=none",
    ]
    args = ["-q", "-m", "agent=td3,sac", "training.run_name=mr", *tiny]
    result = CliRunner().invoke(train_main, args)
    assert result.exit_code == 0, result.output
    root = tmp_path / "results" / "runs" / "mr"
    summary = json.loads((root / "sweep_summary.json").read_text())
    assert summary["file"] is None and summary["source"].startswith("hhml-train -m agent=td3,sac")
    assert [row["trial"] for row in summary["trials"]] == [
        "000_agent-td3_seed-0",
        "001_agent-sac_seed-0",
    ]
    assert [row["status"] for row in summary["trials"]] == ["completed", "completed"]
    for row in summary["trials"]:
        stored = yaml.safe_load((root / row["trial"] / "config.yaml").read_text())
        assert stored["agent"]["algorithm"] == row["point"]["agent"]
        assert stored["training"]["total_steps"] == 16
    assert "| agent=sac | 1/1 |" in (root / "sweep_summary.md").read_text()


# ----------------------------------------------------------------------------- names and dirs


@pytest.fixture()
def user_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mine"
    (directory / "agent").mkdir(parents=True)
    (directory / "experiment").mkdir()
    (directory / "agent" / "small.yaml").write_text("algorithm: sac\nhidden_size: 24\n")
    (directory / "experiment" / "short.yaml").write_text(
        "defaults:\n  - lattice: env\n  - env: mobius\n  - agent: small\n"
        "training:\n  total_steps: 300\n"
    )
    return directory


def test_sweep_files_take_experiment_names_and_config_dir(tmp_path: Path, user_dir: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: s\nconfig: quickstart\ngrid:\n  agent.algorithm: [td3, sac]\nseeds: [0]\n"
    )
    spec = load_sweep(sweep)
    assert [t.cfg.agent.algorithm for t in spec.trials] == ["td3", "sac"]
    assert spec.trials[0].cfg == load_config(
        QS, ["agent.algorithm=td3", "training.seed=0", "training.run_name=000_algorithm-td3_seed-0"]
    )
    sweep.write_text("name: s\nconfig: short\ngrid:\n  agent.gamma: [0.9]\nseeds: [0]\n")
    (trial,) = load_sweep(sweep, config_dir=user_dir).trials
    assert trial.cfg.training.total_steps == 300 and trial.cfg.agent.hidden_size == 24
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep)
    assert str(info.value).startswith(
        f"sweep file {sweep}: 'config' 'short' is neither a file (looked at "
        f"{tmp_path / 'short'}) nor an experiment: short: no such file, and no experiment "
        "'short' in "
    )
    # --sweep --config-dir on the command line
    bad = CliRunner().invoke(
        train_main, ["--sweep", str(sweep), "--config-dir", str(user_dir), "agent.nonsense=1"]
    )
    assert bad.exit_code == 2 and "unknown key 'agent.nonsense'" in bad.stderr


def test_default_config_dir_reaches_load_config_calls(user_dir: Path, tmp_path: Path) -> None:
    with default_config_dir(user_dir):
        assert load_config("short").agent.hidden_size == 24
        assert load_config(QS, ["agent=small"]).agent.algorithm == "sac"
    with pytest.raises(ConfigError, match="no experiment 'short'"):
        load_config("short")
    with pytest.raises(ConfigError, match="does not exist"), default_config_dir(tmp_path / "no"):
        pass


def test_optimize_takes_experiment_names_and_config_dir(user_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    from hhml.cli.optimize import main as optimize_main

    space = tmp_path / "space.yaml"
    space.write_text(
        "study:\n  name: t\nparams:\n  agent.gamma: {type: float, low: 0.9, high: 0.99}\n"
    )
    runner = CliRunner()
    note = ["--trials", "1", "--run-root", str(tmp_path / "runs"), "--workers-note"]
    named = runner.invoke(optimize_main, [str(space), "--config", "quickstart", *note])
    assert named.exit_code == 0, named.output
    assert "--config quickstart" in named.stdout
    mine = runner.invoke(
        optimize_main, [str(space), "--config", "short", "--config-dir", str(user_dir), *note]
    )
    assert mine.exit_code == 0, mine.output
    assert f"--config short --config-dir {user_dir}" in mine.stdout
    default = runner.invoke(optimize_main, [str(space), *note])
    assert default.exit_code == 0, default.output
    assert f"no --config: using the quickstart experiment ({QUICKSTART})" in default.stderr
    missing = runner.invoke(optimize_main, [str(space), "--config", "short", *note])
    assert missing.exit_code == 2
    assert "--config short: no such file, and no experiment 'short'" in missing.stderr
    assert not (tmp_path / "runs").exists()
