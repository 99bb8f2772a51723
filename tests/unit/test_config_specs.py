"""Field specs and section validation: types, ranges, choices, messages."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from hhml.config import (
    FieldParams,
    HHmLConfig,
    LatticeConfig,
    Section,
    SimulationConfig,
    field_specs,
    spec,
    validate_section,
)
from hhml.errors import ConfigError


@dataclass
class _Demo(Section):
    section_name: ClassVar[str] = "demo"

    rate: float = spec(0, low=0.0, high=2.0, doc="a rate")
    count: int = spec(3, low=1, high=10, integer=True)
    mode: str = spec("a", choices=("a", "b"))
    flag: bool = spec(False)


def test_spec_infers_kinds_and_converts_int_default_of_float_field() -> None:
    specs = field_specs(_Demo)
    assert [s.kind for s in specs.values()] == [float, int, str, bool]
    demo = _Demo()
    assert demo.rate == 0.0 and isinstance(demo.rate, float)


@pytest.mark.parametrize(
    ("kwargs", "default"),
    [({"integer": True}, 1.5), ({"choices": ("x",)}, 1.0), ({"low": 0.0}, "s"), ({}, [1])],
)
def test_inconsistent_declarations_are_type_errors(
    kwargs: dict[str, object], default: object
) -> None:
    with pytest.raises(TypeError):
        spec(default, **kwargs)  # type: ignore[arg-type]


def test_default_outside_its_own_range_is_rejected_at_declaration() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        spec(5.0, low=0.0, high=1.0)


def test_int_is_accepted_and_converted_for_float_fields() -> None:
    demo = _Demo(rate=1)
    assert demo.rate == 1.0 and type(demo.rate) is float
    demo.rate = 2
    demo.validate()
    assert type(demo.rate) is float


def test_numpy_scalars_become_python_scalars() -> None:
    demo = _Demo(rate=np.float32(0.5), count=np.int64(4))
    assert type(demo.rate) is float and type(demo.count) is int


@pytest.mark.parametrize("value", [True, False, np.True_])
def test_bool_is_not_a_number(value: object) -> None:
    with pytest.raises(ConfigError, match=r"demo\.count = .* wrong type \((bool|bool_)\)"):
        _Demo(count=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="booleans are not numbers"):
        _Demo(rate=value)  # type: ignore[arg-type]


def test_string_is_not_a_number() -> None:
    with pytest.raises(ConfigError) as info:
        _Demo(rate="0.5")  # type: ignore[arg-type]
    assert str(info.value) == (
        "demo.rate = '0.5' has the wrong type (str); expected a number (float); "
        "write numbers without quotes (0.1, 1e-3)"
    )


def test_float_is_not_an_integer_with_hint() -> None:
    with pytest.raises(ConfigError, match=r"demo\.count = 4\.0 .*expected an integer; write 4 "):
        _Demo(count=4.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"demo\.count = 4\.5 has the wrong type \(float\)"):
        _Demo(count=4.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_non_finite_floats_are_rejected(value: float) -> None:
    with pytest.raises(ConfigError, match=r"demo\.rate = .* is not a finite number"):
        _Demo(rate=value)


def test_range_message_is_inclusive_and_exact() -> None:
    assert _Demo(rate=2.0).rate == 2.0
    assert _Demo(rate=0.0).rate == 0.0
    params = FieldParams()
    params.damping = -0.5
    with pytest.raises(ConfigError) as info:
        params.validate()
    assert str(info.value) == "dynamics.damping = -0.5 is out of range; allowed >= 0"
    core = LatticeConfig()
    core.aspect = 60.0
    with pytest.raises(ConfigError) as info:
        core.validate()
    assert str(info.value) == "lattice.aspect = 60.0 is out of range; allowed [1.2, 50]"


def test_one_sided_range_message() -> None:
    with pytest.raises(ConfigError) as info:
        SimulationConfig(check_every=0)
    assert str(info.value) == "simulation.check_every = 0 is out of range; allowed >= 1"


def test_choice_message_lists_choices_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        LatticeConfig(topology="moebius")  # type: ignore[arg-type]
    assert str(info.value).startswith(
        "lattice.topology = 'moebius' is not valid; choose one of 'mobius', 'cylinder', 'torus'"
    )
    assert "did you mean 'mobius'?" in str(info.value)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_valid_devices(device: str) -> None:
    assert SimulationConfig(device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", ""])
def test_invalid_devices(device: str) -> None:
    with pytest.raises(ConfigError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        SimulationConfig(device=device)


def test_validate_section_recurses_into_nested_dataclasses() -> None:
    @dataclass
    class Outer:
        inner: _Demo = dataclasses.field(default_factory=_Demo)

    outer = Outer()
    outer.inner.count = 0
    with pytest.raises(ConfigError, match=r"^outer\.inner\.count = 0 is out of range"):
        validate_section(outer, "outer")


def test_replace_returns_validated_copy() -> None:
    params = FieldParams()
    changed = params.replace(damping=1, boundary_winding=-3)
    assert changed.damping == 1.0 and type(changed.damping) is float
    assert changed.boundary_winding == -3
    assert params.damping == 0.0  # original untouched
    with pytest.raises(ConfigError, match="out of range; allowed"):
        params.replace(nonlinearity=-1.0)


def test_replace_unknown_field_suggests_closest() -> None:
    with pytest.raises(ConfigError) as info:
        FieldParams().replace(dampin=0.1)
    assert str(info.value) == "unknown key 'dynamics.dampin'; did you mean 'dynamics.damping'?"


def test_from_mapping_rejects_unknown_keys() -> None:
    assert LatticeConfig.from_mapping({"nu": 64}).nu == 64
    with pytest.raises(ConfigError, match=r"did you mean 'lattice\.nv'"):
        LatticeConfig.from_mapping({"nvv": 3})


def test_field_params_schema_matches_the_design() -> None:
    """Physical validity only (non-negative rates and strengths, any real frequency): the
    RL control box lives in the controls table, stability in the dt check."""
    expected = {
        "damping": (0.0, 0.0, None, "γ"),
        "nonlinearity": (1.0, 0.0, None, "g"),
        "diffusion": (0.01, 0.0, None, "D"),
        "noise_temperature": (0.0, 0.0, None, "T"),
        "dispersion": (0.0, None, None, "α"),
        "nonlinear_frequency": (0.0, None, None, "β"),
        "spectral_filter": (0.0, 0.0, None, "ν₄"),
        "source_amplitude": (0.0, 0.0, None, "A"),
        "source_frequency": (0.0, None, None, "ω"),
        "source_spread": (0.0, 0.0, None, "σ_A"),
        "boundary_winding": (0, None, None, "m"),
        "coupling": (0.0, 0.0, None, "c"),
        "pinning": (0.0, 0.0, None, "V₀"),
        "pair_seeding": (0.0, 0.0, None, ""),
        "pinning_sites": (8, 0, 256, ""),
        "pinning_radius": (0.15, 1e-3, 10.0, ""),
        "pair_separation": (0.3, 1e-3, 10.0, ""),
        "core_radius": (0.1, 1e-3, 10.0, ""),
    }
    specs = field_specs(FieldParams)
    assert list(specs) == list(expected)
    defaults = FieldParams()
    for name, (default, low, high, symbol) in expected.items():
        assert getattr(defaults, name) == default, name
        assert (specs[name].low, specs[name].high, specs[name].symbol) == (low, high, symbol)
    assert specs["boundary_winding"].kind is int and specs["pinning_sites"].kind is int
    assert all(specs[name].doc for name in specs)


def test_lattice_and_simulation_defaults() -> None:
    lattice = LatticeConfig()
    assert (lattice.nu, lattice.nv, lattice.length) == (128, 32, 2 * math.pi)
    assert (lattice.topology, lattice.edge, lattice.metric) == ("mobius", "neumann", "embedded")
    assert field_specs(LatticeConfig)["twist"].high == 2 * math.pi
    sim = SimulationConfig()
    assert (sim.dt, sim.integrator, sim.steps, sim.seed) == (0.05, "rk4", 400, 0)
    assert field_specs(SimulationConfig)["seed"].high == 2**63 - 1


def test_hhml_config_sections_and_type_check() -> None:
    assert list(HHmLConfig.section_types()) == [
        "lattice",
        "dynamics",
        "simulation",
        "env",
        "controls",
        "agent",
        "training",
    ]
    with pytest.raises(ConfigError, match="section 'dynamics' must be a FieldParams, got dict"):
        HHmLConfig(dynamics={"damping": 0.1})  # type: ignore[arg-type]
