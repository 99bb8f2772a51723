"""Loading, composing, overriding and dumping configurations."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hhml.config import (
    FieldParams,
    HHmLConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    field_specs,
    find_config_root,
    load_config,
    save_config,
)
from hhml.config.specs import FieldSpec
from hhml.config.yaml_io import MAX_YAML_DEPTH, MAX_YAML_NODES, load_yaml_text, read_yaml_file
from hhml.errors import ConfigError

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A small config tree: configs/{main.yaml, lattice/*, dynamics/*}."""
    root = tmp_path / "configs"
    write(root, "lattice/small.yaml", "nu: 64\nnv: 16\n")
    write(root, "lattice/large.yaml", "nu: 512\nnv: 64\n")
    write(root, "dynamics/cgl.yaml", "damping: 0.1\nnonlinearity: 2.0\n")
    write(root, "dynamics/quiet.yaml", "noise_temperature: 0.0\n")
    write(
        root,
        "main.yaml",
        "defaults:\n  - lattice: small\n  - dynamics: cgl\n" "dynamics:\n  nonlinearity: 3.0\n",
    )
    return root


def message(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(exc.value)


# ----------------------------------------------------------------------------- basics


def test_none_gives_schema_defaults() -> None:
    assert load_config() == HHmLConfig()


def test_defaults_plus_overrides_without_file() -> None:
    cfg = load_config(None, ["dynamics.damping=1e-3", "lattice.topology=cylinder"])
    assert cfg.dynamics.damping == 1e-3
    assert cfg.lattice.topology == "cylinder"
    assert cfg.lattice.nu == 128


def test_group_selection_and_precedence(configs: Path) -> None:
    cfg = load_config(configs / "main.yaml")
    assert (cfg.lattice.nu, cfg.lattice.nv) == (64, 16)  # from lattice/small
    assert cfg.dynamics.damping == 0.1  # from dynamics/cgl
    assert cfg.dynamics.nonlinearity == 3.0  # the file's own key beats its group

    cfg = load_config(configs / "main.yaml", ["dynamics.nonlinearity=4", "lattice.nu=32"])
    assert cfg.dynamics.nonlinearity == 4.0  # overrides beat the file
    assert cfg.lattice.nu == 32  # ... and the groups
    assert cfg.lattice.nv == 16


def test_group_override_replaces_or_adds_a_group(configs: Path) -> None:
    cfg = load_config(configs / "main.yaml", ["lattice=large"])
    assert (cfg.lattice.nu, cfg.lattice.nv) == (512, 64)
    write(configs, "simulation/quick.yaml", "steps: 10\n")
    cfg = load_config(configs / "main.yaml", ["simulation=quick"])
    assert cfg.simulation.steps == 10
    # value overrides beat group overrides whatever their order
    cfg = load_config(configs / "main.yaml", ["lattice.nu=8", "lattice=large"])
    assert cfg.lattice.nu == 8


def test_later_overrides_win() -> None:
    cfg = load_config(None, ["dynamics.damping=0.1", "dynamics.damping=0.2"])
    assert cfg.dynamics.damping == 0.2


def test_group_override_without_a_file(configs: Path) -> None:
    cfg = load_config(None, ["lattice=small"], config_root=configs)
    assert cfg.lattice.nu == 64


def test_group_override_without_a_local_config_root_uses_the_packaged_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/ here: the groups come from the package
    assert load_config(None, ["lattice=small"]).lattice.nu == 64


def test_config_root_is_nearest_configs_ancestor(configs: Path, tmp_path: Path) -> None:
    nested = write(configs, "experiments/deep/run.yaml", "defaults:\n  - lattice: small\n")
    assert find_config_root(nested) == configs
    assert load_config(nested).lattice.nu == 64
    outside = write(tmp_path, "elsewhere/run.yaml", "defaults:\n  - lattice: here\n")
    write(tmp_path, "elsewhere/lattice/here.yaml", "nu: 20\n")
    assert find_config_root(outside) == outside.parent
    assert load_config(outside).lattice.nu == 20


def test_an_empty_file_gives_defaults_and_an_empty_section_is_refused(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "empty.yaml", "")) == HHmLConfig()
    with pytest.raises(ConfigError, match="lattice"):
        load_config(write(tmp_path, "blank.yaml", "lattice:\n  # nu: 3\n"))


def test_yaml_scalars_follow_yaml_1_2(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "dynamics:\n  spectral_filter: 1e-6\n  damping: 1\n"
        "lattice:\n  nu: 010\n  edge: dirichlet\nsimulation:\n  output_dir: no\n"
        "  device: cpu # comment\n",
    )
    cfg = load_config(path)
    assert cfg.dynamics.spectral_filter == 1e-6
    assert cfg.dynamics.damping == 1.0 and type(cfg.dynamics.damping) is float
    assert cfg.lattice.nu == 10  # decimal, not octal
    assert cfg.simulation.output_dir == "no"  # a string, not False
    assert cfg.simulation.device == "cpu"


def test_override_values_are_yaml_scalars() -> None:
    cfg = load_config(
        None,
        [
            "dynamics.spectral_filter=5e-6",
            "lattice.nu = 64",
            "simulation.output_dir=runs/a b #1",
            "simulation.device='cuda:0'",
            "lattice.twist=-3.14",
        ],
    )
    assert cfg.dynamics.spectral_filter == 5e-6
    assert cfg.lattice.nu == 64
    assert cfg.simulation.output_dir == "runs/a b #1"  # string fields take the text as is
    assert cfg.simulation.device == "cuda:0"
    assert cfg.lattice.twist == -3.14


# ----------------------------------------------------------------------------- errors


def test_unknown_key_in_file_suggests_closest_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "dynamics:\n  damping: 0.1\n  dampin: 0.2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == (
        f"unknown key 'dynamics.dampin' in {path}, line 3; did you mean 'dynamics.damping'?"
    )


def test_unknown_key_override_suggests_closest() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["dynamics.dampin=0.1"])
    assert message(info) == (
        "unknown key 'dynamics.dampin' in override 'dynamics.dampin=0.1'; "
        "did you mean 'dynamics.damping'?"
    )


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown key 'simulation\.zzz'.*valid: .*'simulation\.dt'"
    ):
        load_config(None, ["simulation.zzz=1"])


def test_key_in_wrong_section_points_to_the_right_one() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'lattice\.nu'"):
        load_config(None, ["dynamics.nu=64"])


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "dynamic:\n  damping: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == (
        f"unknown section 'dynamic' in {path}, line 1; did you mean 'dynamics'?"
    )
    path = write(tmp_path, "y.yaml", "nu: 64\n")
    with pytest.raises(ConfigError, match="'nu' is a key of section 'lattice'"):
        load_config(path)


def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "lattice: 64\n")
    with pytest.raises(
        ConfigError, match=r"section 'lattice' in .*x\.yaml, line 1 must be a mapping"
    ):
        load_config(path)


def test_wrong_type_names_key_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "dynamics:\n  damping: '0.1'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info).startswith(
        "dynamics.damping = '0.1' has the wrong type (str); expected a number (float)"
    )
    assert message(info).endswith(f"(set in {path}, line 2)")


def test_out_of_range_names_key_range_and_origin(tmp_path: Path) -> None:
    # schema ranges are physical validity (γ ≥ 0), not the RL control box
    path = write(tmp_path, "x.yaml", "dynamics:\n  damping: -0.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == (
        f"dynamics.damping = -0.5 is out of range; allowed >= 0 (set in {path}, line 2)"
    )


def test_bad_choice_lists_valid_values() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["lattice.topology=moebius"])
    assert message(info).startswith(
        "lattice.topology = 'moebius' is not valid; choose one of 'mobius', 'cylinder', 'torus'"
    )
    assert "(set in override 'lattice.topology=moebius')" in message(info)


@pytest.mark.parametrize("value", ["true", "false", "yes"])
def test_bool_as_int_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"lattice\.nu = .* has the wrong type"):
        load_config(None, [f"lattice.nu={value}"])


def test_bool_in_yaml_file_rejected_for_number(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "lattice:\n  strips: true\n")
    with pytest.raises(ConfigError, match=r"lattice\.strips = true has the wrong type \(bool\)"):
        load_config(path)


@pytest.mark.parametrize("override", ["lattice.nu64", "=3", "lattice=", "  "])
def test_malformed_override_shows_expected_form(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert "malformed override" in message(info)
    assert "'section.key=value'" in message(info) and "'group=name'" in message(info)


def test_single_string_of_overrides_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        load_config(None, "lattice.nu=64")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == f"config file not found: {path}"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_yaml_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "lattice:\n  nu: 64\n  nv: [1, 2\n  edge: neumann\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info).startswith(f"YAML syntax error in {path}, line ")
    path = write(tmp_path, "y.yaml", "lattice:\n  nu: 64\n   nv: 16\n")
    with pytest.raises(ConfigError, match=re.escape(f"YAML syntax error in {path}, line 3")):
        load_config(path)


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "lattice:\n  nu: 64\n  nu: 32\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == (
        f"duplicate key 'lattice.nu' in {path}, line 3 (first given on line 2); keep only one"
    )


def _alias_bomb(levels: int = 9) -> str:
    """The "billion laughs" document: 9 strings, each level 9 aliases of the last (9**9)."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_with_file_and_line(tmp_path: Path) -> None:
    text = _alias_bomb()
    assert len(text) < 500  # a few hundred bytes that would expand to 9**9 strings
    path = write(tmp_path, "bomb.yaml", text)
    # The first 100 000 nodes are reached inside l5 (9**6 strings; l0..l4 add ~66 000).
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == (
        f"{path}, line 6: the YAML document expands to more than {MAX_YAML_NODES} nodes "
        "(an aliased node counts once per use); anchors and aliases are allowed, but not "
        "to expand a config to this size"
    )
    with pytest.raises(ConfigError, match="expands to more than"):
        read_yaml_file(path, "bomb.yaml")


@pytest.mark.parametrize(
    ("text", "line"), [("a: &a [*a]\n", 1), ("a: &a\n  b:\n    - 1\n    - *a\n", 3)]
)
def test_recursive_alias_is_a_config_error(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "loop.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message(info) == (
        f"{path}, line {line}: an alias refers to the node anchored on line 1, which "
        "contains it (a recursive alias); an alias may only refer to a node outside itself"
    )


def test_ordinary_anchors_aliases_and_merge_keys_still_work() -> None:
    data, _ = load_yaml_text(
        "base: &b {x: 1, y: [2, 3]}\nsame: *b\nmerged:\n  <<: *b\n  z: 4\n", "t.yaml"
    )
    assert data == {
        "base": {"x": 1, "y": [2, 3]},
        "same": {"x": 1, "y": [2, 3]},
        "merged": {"x": 1, "y": [2, 3], "z": 4},
    }


def test_too_deep_nesting_is_a_config_error() -> None:
    depth = MAX_YAML_DEPTH + 1
    with pytest.raises(ConfigError, match=rf"t\.yaml, line 1: .*deeper than {MAX_YAML_DEPTH}"):
        load_yaml_text("x: " + "[" * depth + "]" * depth + "\n", "t.yaml")
    load_yaml_text("x: " + "[" * (depth - 2) + "]" * (depth - 2) + "\n", "t.yaml")


def test_every_shipped_yaml_file_is_within_the_limits() -> None:
    files = sorted(REPO_CONFIGS.rglob("*.yaml"))
    assert len(files) > 10
    for path in files:
        read_yaml_file(path, str(path))


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "42\n", "just text\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "x.yaml", text)
    with pytest.raises(ConfigError, match=r"the top level of .*x\.yaml must be a mapping"):
        load_config(path)


def test_missing_group_file_lists_available_options(configs: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(configs / "main.yaml", ["lattice=huge"])
    text = message(info)
    assert "config group 'lattice' has no option 'huge'" in text
    assert "(override 'lattice=huge')" in text
    assert "available: large, small" in text


def test_missing_group_file_in_defaults_names_file_and_line(configs: Path) -> None:
    path = write(configs, "bad.yaml", "defaults:\n  - lattice: smal\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"({path}, line 2)" in message(info)
    assert "available: large, small; did you mean 'small'?" in message(info)


def test_unknown_group_lists_groups_and_hints_at_value_override(configs: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(configs / "main.yaml", ["seed=3"])
    text = message(info)
    assert "unknown config group 'seed'" in text
    assert "available groups: dynamics, lattice" in text
    assert "'simulation.seed=3'" in text


def test_malformed_defaults_list(configs: Path) -> None:
    path = write(configs, "x.yaml", "defaults: lattice\n")
    with pytest.raises(ConfigError, match=r"'defaults' in .* must be a list"):
        load_config(path)
    path = write(configs, "y.yaml", "defaults:\n  - lattice\n")
    with pytest.raises(ConfigError, match="entry 0 of 'defaults'"):
        load_config(path)
    path = write(configs, "z.yaml", "defaults:\n  - lattice: small\n  - lattice: large\n")
    with pytest.raises(ConfigError, match="group 'lattice' is selected twice"):
        load_config(path)


def test_group_file_with_section_wrapper_is_explained(configs: Path) -> None:
    write(configs, "lattice/wrapped.yaml", "lattice:\n  nu: 64\n")
    with pytest.raises(ConfigError, match="hold the keys of that section directly"):
        load_config(None, ["lattice=wrapped"], config_root=configs)


def test_group_option_must_not_be_a_path(configs: Path) -> None:
    with pytest.raises(ConfigError, match="is not a name"):
        load_config(None, ["lattice=../main"], config_root=configs)
    with pytest.raises(ConfigError, match="is not a name"):  # a group in a defaults list
        path = write(configs, "experiment/escape.yaml", "defaults:\n  - ../outside: x\n")
        load_config(path, config_root=configs)


def test_whole_config_groups_with_nested_defaults(configs: Path) -> None:
    write(
        configs,
        "experiment/big_run.yaml",
        "defaults:\n  - lattice: large\nsimulation:\n  steps: 7\n",
    )
    cfg = load_config(configs / "main.yaml", ["experiment=big_run"])
    assert cfg.lattice.nu == 512 and cfg.simulation.steps == 7
    write(configs, "experiment/a.yaml", "defaults:\n  - experiment2: b\n")
    write(configs, "experiment2/b.yaml", "defaults:\n  - experiment: a\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(None, ["experiment=a"], config_root=configs)


# ----------------------------------------------------------------------------- dicts and dumps


def test_config_from_dict_validates_like_files() -> None:
    cfg = config_from_dict({"lattice": {"nu": 64}, "dynamics": {"damping": 1}})
    assert cfg.lattice.nu == 64 and cfg.dynamics.damping == 1.0
    with pytest.raises(ConfigError) as info:
        config_from_dict({"dynamics": {"dampin": 1}}, source="run.json")
    assert message(info) == (
        "unknown key 'dynamics.dampin' in run.json; did you mean 'dynamics.damping'?"
    )
    with pytest.raises(ConfigError, match=r"\(set in <dict>\)"):
        config_from_dict({"lattice": {"nu": 1}})
    with pytest.raises(ConfigError, match="use load_config"):
        config_from_dict({"defaults": [{"lattice": "small"}]})


def test_config_to_dict_is_in_schema_order() -> None:
    data = config_to_dict(HHmLConfig())
    assert list(data) == list(HHmLConfig.section_types())
    assert list(data["dynamics"]) == list(field_specs(FieldParams))


def test_dump_keys_in_schema_order_and_round_trip(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        [
            "dynamics.damping=0.30000000000000004",
            "dynamics.spectral_filter=1e-6",
            "lattice.twist=-3.141592653589793",
            "simulation.seed=9223372036854775807",
            "simulation.output_dir=1e5",
            "simulation.device=cuda:1",
        ],
    )
    text = dump_config(cfg)
    keys = re.findall(r"^(\w+):", text, flags=re.M)
    assert keys == list(HHmLConfig.section_types())
    path = tmp_path / "resolved.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_save_config_writes_atomically_and_reloads(tmp_path: Path) -> None:
    cfg = load_config(None, ["lattice=small"], config_root=REPO_CONFIGS)
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert path.read_text(encoding="utf-8") == dump_config(cfg)
    assert load_config(path) == cfg
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]


def test_dump_rejects_an_invalid_mutated_config() -> None:
    cfg = HHmLConfig()
    cfg.lattice.nu = 2
    with pytest.raises(ConfigError, match=r"lattice\.nu = 2 is out of range"):
        dump_config(cfg)


def _values(field_spec: FieldSpec) -> st.SearchStrategy[Any]:
    if field_spec.choices is not None:
        return st.sampled_from(field_spec.choices)
    if field_spec.kind is bool:
        return st.booleans()
    if field_spec.kind is str:
        if field_spec.pattern is not None and "cuda" in field_spec.pattern:
            return st.sampled_from(["auto", "cpu", "cuda", "cuda:3"])
        if field_spec.pattern is not None:
            return st.from_regex(field_spec.pattern, fullmatch=True)
        return st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
    if field_spec.kind is int:
        return st.integers(int(field_spec.low or 0), int(field_spec.high or 10**12))
    low = field_spec.low if field_spec.low is not None else -1e12
    high = field_spec.high if field_spec.high is not None else 1e12
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


_config_dicts = st.fixed_dictionaries(
    {
        section: st.fixed_dictionaries({k: _values(s) for k, s in field_specs(t).items()})
        for section, t in HHmLConfig.section_types().items()
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_config_dicts)
def test_dump_load_round_trip_is_exact(
    data: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        cfg = config_from_dict(data)
    except ConfigError as exc:
        # whole-section rules (agent.log_std_min < agent.log_std_max, a finite
        # agent.target_entropy such as '1e400', not both learning rates 0, the set-point
        # task's range and count) reject some draws
        message = str(exc)
        assume(
            "must be smaller" not in message
            and "is not finite" not in message
            and "would never learn" not in message
            and "the set-point range needs" not in message
            and "at most one set-point per env step" not in message
        )
        raise
    path = tmp_path_factory.mktemp("dump") / "cfg.yaml"
    path.write_text(dump_config(cfg), encoding="utf-8")
    loaded = load_config(path)
    assert loaded == cfg
    for section, values in config_to_dict(loaded).items():
        for key, value in values.items():
            assert type(value) is type(getattr(getattr(cfg, section), key))


# ----------------------------------------------------------------------------- shipped configs


# Sweep files are not configs; tests/unit/test_sweep.py loads them.
#: Config files (sweep and search-space files have their own formats and tests).
SHIPPED = sorted(
    p for p in REPO_CONFIGS.rglob("*.yaml") if p.parent.name not in ("sweep", "search")
)


def test_shipped_configs_exist() -> None:
    names = {p.relative_to(REPO_CONFIGS).as_posix() for p in SHIPPED}
    assert {
        "default.yaml",
        "lattice/mobius.yaml",
        "lattice/cylinder.yaml",
        "lattice/torus.yaml",
        "lattice/small.yaml",
        "lattice/stack.yaml",
        "dynamics/cgl.yaml",
        "dynamics/gross_pitaevskii.yaml",
        "dynamics/driven.yaml",
        "simulation/default.yaml",
        "simulation/quick.yaml",
    } <= names


def test_default_yaml_equals_schema_defaults() -> None:
    assert load_config(REPO_CONFIGS / "default.yaml") == HHmLConfig()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(REPO_CONFIGS).as_posix())
def test_every_shipped_config_loads(path: Path) -> None:
    relative = path.relative_to(REPO_CONFIGS)
    if len(relative.parts) == 1:
        load_config(path)
    else:
        group, name = relative.parts[0], relative.with_suffix("").name
        load_config(REPO_CONFIGS / "default.yaml", [f"{group}={name}"])


def test_shipped_groups_have_the_documented_values() -> None:
    default = REPO_CONFIGS / "default.yaml"
    gp = load_config(default, ["dynamics=gross_pitaevskii"]).dynamics
    assert (gp.damping, gp.diffusion, gp.dispersion, gp.nonlinear_frequency, gp.nonlinearity) == (
        1.0,
        0.0,
        0.05,
        1.0,
        0.0,
    )
    driven = load_config(default, ["dynamics=driven"]).dynamics
    assert (driven.source_amplitude, driven.source_frequency, driven.boundary_winding) == (
        0.5,
        1.0,
        3,
    )
    small = load_config(default, ["lattice=small"]).lattice
    assert (small.nu, small.nv, small.topology) == (64, 16, "mobius")
    assert load_config(default, ["lattice=stack"]).lattice.strips == 3
    assert load_config(default, ["lattice=cylinder"]).lattice.topology == "cylinder"
    assert load_config(default, ["lattice=torus"]).lattice.topology == "torus"
    assert load_config(default, ["simulation=quick"]).simulation.steps == 100
    assert math.isclose(load_config(default).lattice.length, 2 * math.pi)
