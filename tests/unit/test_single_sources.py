"""One definition of each shared fact: the 23-control table and lattice construction.

The control table lives in :mod:`hhml.config.controls`; ``ControlsConfig``, the env's
``CONTROLS``, the analysis and the docs tables are derived from it. Lattices described by
a config are built by :mod:`hhml.core.factory`. These tests fail when a second copy of
either reappears in a form that can be checked mechanically.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hhml.analysis.dark_matter.analysis import _resolve
from hhml.analysis.loading import Snapshot, snapshot_lattice_config
from hhml.analysis.report.dark_matter_section import snapshot_system
from hhml.config import HHmLConfig, field_specs, load_config
from hhml.config.controls import (
    CONTROL_INDEX,
    CONTROLS,
    LATTICE_CONTROLS,
    NUM_CONTROLS,
    ControlsConfig,
)
from hhml.config.specs import format_number
from hhml.core.factory import (
    build_lattice,
    ensemble_from_config,
    lattice_from_config,
    lattice_kwargs,
)
from hhml.core.mobius import GEOMETRY_KEYS, LatticeEnsemble, MobiusStrip, TokamakStack
from hhml.errors import CheckpointError, ConfigError, LatticeError

REPO = Path(__file__).parents[2]
TABLE_FILE = REPO / "src" / "hhml" / "config" / "controls.py"
FACTORY_FILE = REPO / "src" / "hhml" / "core" / "factory.py"
#: Files that still build an env lattice from ``cfg.lattice`` by hand (being rewritten by
#: others); empty this once they call :func:`hhml.core.factory.ensemble_from_config`.
PENDING_LATTICE_BUILDERS: set[str] = set()

C128 = torch.complex128
SMALL = ["lattice.nu=16", "lattice.nv=6", "simulation.device=cpu", "simulation.dtype=complex128"]


def _python_files() -> list[Path]:
    roots = [REPO / "src" / "hhml", REPO / "docs", REPO / "examples", REPO / "benchmarks"]
    return sorted(p for root in roots for p in root.rglob("*.py"))


# ------------------------------------------------------------------ control table
def test_controls_config_fields_are_generated_from_the_table() -> None:
    fields = dataclasses.fields(ControlsConfig)
    assert [f.name for f in fields] == [k for c in CONTROLS for k in (c.low_key, c.high_key)]
    assert [f.default for f in fields] == [x for c in CONTROLS for x in (c.low, c.high)]
    specs = field_specs(ControlsConfig)
    sections = HHmLConfig.section_types()
    for c in CONTROLS:
        for end in ("low", "high"):
            doc = specs[f"{c.name}_{end}"].doc
            assert doc == f"{end} end: {c.meaning} → {c.section}.{c.name}"
        # every control drives an existing numeric field whose valid range holds its range
        target = field_specs(sections[c.section])[c.name]
        assert target.kind is (int if c.integer else float)
        assert target.low is None or target.low <= c.low
        assert target.high is None or c.high <= target.high
    assert NUM_CONTROLS == len(CONTROLS) == 23
    assert list(CONTROL_INDEX) == [c.name for c in CONTROLS]
    assert list(CONTROL_INDEX.values()) == list(range(NUM_CONTROLS))


def test_the_generated_section_loads_validates_and_reports_like_a_declared_one() -> None:
    cfg = load_config(None, ["controls.damping_high=1.0"])
    assert cfg.controls.damping_high == 1.0 and cfg.controls.damping_low == 0.0
    typo = r"controls\.damping_hihg.*did you mean 'controls\.damping_high'"
    with pytest.raises(ConfigError, match=typo):
        load_config(None, ["controls.damping_hihg=1.0"])
    with pytest.raises(ConfigError, match=r"controls\.kappa_low = 'x' has the wrong type"):
        load_config(None, ["controls.kappa_low='x'"])


def test_no_second_copy_of_the_table_in_the_sources() -> None:
    range_keys = {k for c in CONTROLS for k in (c.low_key, c.high_key)}
    offenders: list[str] = []
    for path in _python_files():
        if path == TABLE_FILE:
            continue
        rel = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name in ("Control", "ControlsConfig"):
                offenders.append(f"{rel}:{node.lineno} defines class {node.name}")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Control":
                offenders.append(f"{rel}:{node.lineno} calls Control(...)")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    name = getattr(t, "id", "")
                    if name in ("CONTROLS", "NUM_CONTROLS") or name in range_keys:
                        offenders.append(f"{rel}:{node.lineno} assigns {name}")
    assert offenders == []


def test_env_reexports_the_table_object() -> None:
    import hhml.ml.env as env_pkg
    from hhml.ml.env import controls as env_controls

    assert env_pkg.CONTROLS is CONTROLS
    assert env_controls.CONTROLS is CONTROLS
    assert env_controls.NUM_CONTROLS == NUM_CONTROLS
    assert env_controls.Control is type(CONTROLS[0])


def _table_rows(text: str, heading: str | None = None) -> list[list[str]]:
    """Cells of the Markdown table rows whose first cell is a number (under ``heading``)."""
    if heading is not None:
        text = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        if re.match(r"\| \d+ \|", line):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def test_docs_tables_list_the_table_in_action_order() -> None:
    rows = _table_rows((REPO / "docs" / "parameters.md").read_text(encoding="utf-8"))
    expected = [
        [
            str(k),
            c.category,
            f"`{c.section}.{c.name}`",
            c.meaning,
            f"[{format_number(c.low)}, {format_number(c.high)}]",
            c.acts_on,
        ]
        for k, c in enumerate(CONTROLS, 1)
    ]
    assert [[r[0], r[1], r[2], r[4], r[5], r[9]] for r in rows] == expected
    env_doc = (REPO / "docs" / "environment.md").read_text(encoding="utf-8")
    rows = _table_rows(env_doc, "## The 23 controls")
    expected = [
        [str(k), c.category, f"`{c.section}.{c.name}`", f"[{c.low:g}, {c.high:g}]", c.acts_on]
        for k, c in enumerate(CONTROLS, 1)
    ]
    assert [[r[0], r[1], r[2].split(" (")[0], r[3], r[5]] for r in rows] == expected


def test_analysis_and_validation_index_controls_by_the_table() -> None:
    from hhml.validation.checks import GEOMETRY_BASE, SENSITIVITY_BASE

    assert LATTICE_CONTROLS == GEOMETRY_KEYS  # the ensemble's own list of geometry keys
    assert tuple(c.name for c in CONTROLS if c.section == "lattice") == LATTICE_CONTROLS
    assert tuple(GEOMETRY_BASE) == LATTICE_CONTROLS
    assert {c.name for c in CONTROLS if c.section == "dynamics"} <= set(SENSITIVITY_BASE)
    # values whose columns all differ: each geometry key must come from its own column
    values = _mid_values(2)
    ens = ensemble_from_config(load_config(None, ["lattice.strips=2", *SMALL]), values)
    geometry = ens.geometry()
    for k in LATTICE_CONTROLS:
        np.testing.assert_array_equal(geometry[k], values[:, CONTROL_INDEX[k]])
    with pytest.raises(LatticeError, match=r"shape \(2, 22\); expected \(B, 23\)"):
        ensemble_from_config(load_config(None, SMALL), values[:, :-1])


# ------------------------------------------------------------------ lattice construction
def _mid_values(size: int) -> np.ndarray:
    """``[size, 23]`` control values inside the default ranges, different in every row."""
    low = np.array([c.low for c in CONTROLS])
    high = np.array([c.high for c in CONTROLS])
    frac = np.arange(1, size + 1)[:, None] / (size + 1)
    out = low + frac * (high - low)
    integer = np.array([c.integer for c in CONTROLS])
    return np.where(integer, np.round(out), out)


def _assert_same_lattice(a: object, b: object) -> None:
    """Built by the same constructor from the same arguments: identical operators."""
    assert type(a) is type(b)
    assert isinstance(a, (MobiusStrip, TokamakStack)) and isinstance(b, (MobiusStrip, TokamakStack))
    assert (a.dtype, a.device, a.nu, a.nv) == (b.dtype, b.device, b.nu, b.nv)
    assert repr(a) == repr(b)
    shape = (a.num_strips, a.nu, a.nv) if isinstance(a, TokamakStack) else (a.nu, a.nv)
    psi = torch.randn(*shape, dtype=a.dtype, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.laplacian(psi), b.laplacian(psi))
    assert torch.equal(a.area_weights(), b.area_weights())


@pytest.mark.parametrize("strips", [1, 2])
def test_dark_matter_builds_the_factory_lattice_of_a_config(strips: int) -> None:
    overrides = [f"lattice.strips={strips}", "lattice.aspect=8", "lattice.twist=0.4"]
    cfg = load_config(None, [*overrides, *SMALL])
    lattice = _resolve(cfg, None, None, None)[0]
    _assert_same_lattice(lattice, lattice_from_config(cfg))
    _assert_same_lattice(lattice, build_lattice(cfg.lattice, dtype=C128))


def _snapshot(cfg: HHmLConfig, values: np.ndarray) -> Snapshot:
    lat = cfg.lattice
    psi = torch.randn(
        values.shape[0], lat.strips, lat.nu, lat.nv, dtype=C128,
        generator=torch.Generator().manual_seed(2),
    )  # fmt: skip
    chart = {
        "nu": lat.nu, "nv": lat.nv, "strips": lat.strips, "length": lat.length,
        "half_width": lat.half_width, "topology": lat.topology, "edge": lat.edge,
        "metric": lat.metric, "strip_spacing": lat.strip_spacing,
    }  # fmt: skip
    extra = {"values": torch.as_tensor(values), "control_names": [c.name for c in CONTROLS]}
    index, charge = torch.zeros(0, 4, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    return Snapshot(Path("fake.pt"), None, psi, index, torch.zeros(0, 2), charge, chart, extra)


def test_snapshot_lattices_are_the_factory_lattices_of_each_env() -> None:
    cfg = load_config(None, ["lattice=env", "simulation=env", "lattice.strip_spacing=2.5", *SMALL])
    values = _mid_values(3)
    snap = _snapshot(cfg, values)
    ens = ensemble_from_config(cfg, values)
    psi = snap.psi
    lap = ens.laplacian(psi)
    for b in range(3):
        own = {k: float(values[b, CONTROL_INDEX[k]]) for k in LATTICE_CONTROLS}
        expected = build_lattice(cfg.lattice.replace(**own), dtype=C128)
        lattice, params, _ = snapshot_system(snap, b)
        _assert_same_lattice(lattice, expected)
        _assert_same_lattice(build_lattice(snapshot_lattice_config(snap, b), dtype=C128), expected)
        flat = snapshot_system(snap, b, metric="flat")[0]
        flat_cfg = cfg.lattice.replace(metric="flat", **own)
        _assert_same_lattice(flat, build_lattice(flat_cfg, dtype=C128))
        for c in CONTROLS:
            if c.section == "dynamics":
                assert getattr(params, c.name) == values[b, CONTROL_INDEX[c.name]]
        # element b of the factory's ensemble is that stack: the ensemble's analytic metric
        # differs from the stack's by ≤ 1e-11 relative (measured 9.6e-12 on area weights,
        # 1.3e-12 on the Laplacian); tolerance 1e-10
        assert isinstance(expected, TokamakStack)
        ref = expected.laplacian(psi[b])
        assert float((lap[b] - ref).abs().max()) <= 1e-10 * float(ref.abs().max())
        w = expected.area_weights()
        assert float((ens.area_weights()[b] - w).abs().max()) <= 1e-10 * float(w.max())
    snap.extra["control_names"] = [c.name for c in CONTROLS if c.name != "kappa"] + ["x"]
    with pytest.raises(CheckpointError, match=r"lack the lattice control\(s\) \['kappa'\]"):
        snapshot_lattice_config(snap, 0)


def test_ensemble_kwargs_come_from_the_config() -> None:
    cfg = load_config(None, ["lattice=env", "simulation=env", "simulation.device=cpu"])
    kw = lattice_kwargs(cfg)
    lat = cfg.lattice
    assert kw == {
        "strip_spacing": lat.strip_spacing, "length": lat.length,
        "half_width": lat.half_width, "topology": lat.topology, "edge": lat.edge,
        "metric": lat.metric, "dtype": torch.complex64, "device": torch.device("cpu"),
    }  # fmt: skip
    ens = ensemble_from_config(cfg, _mid_values(2))
    assert isinstance(ens, LatticeEnsemble) and ens.dtype == torch.complex64
    assert (ens.size, ens.num_strips, ens.nu, ens.nv) == (2, lat.strips, lat.nu, lat.nv)


def test_the_environment_builds_the_factory_ensemble() -> None:
    from hhml.ml.env import MobiusVortexCore

    cfg = load_config(None, ["lattice=env", "simulation=env", "env=mobius", *SMALL])
    core = MobiusVortexCore(cfg, 2)
    expected = ensemble_from_config(cfg, np.tile(core.defaults, (2, 1)))
    assert repr(core.lattice) == repr(expected) and core.lattice.dtype == expected.dtype
    got, want = core.lattice.geometry(), expected.geometry()
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    psi = torch.randn(2, 2, 16, 6, dtype=C128, generator=torch.Generator().manual_seed(3))
    assert torch.equal(core.lattice.laplacian(psi), expected.laplacian(psi))


def test_no_lattice_is_built_from_lattice_config_fields_by_hand() -> None:
    """Outside the factory, no lattice constructor takes ``cfg.lattice.*``/``lat.*``."""
    ctors = {"MobiusStrip", "TokamakStack", "LatticeEnsemble"}
    offenders: set[str] = set()
    for path in _python_files():
        if path == FACTORY_FILE or "core/mobius" in path.as_posix():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ctors):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and (
                    sub.attr == "lattice" or getattr(sub.value, "id", "") == "lat"
                ):
                    offenders.add(str(path.relative_to(REPO)))
    assert offenders <= PENDING_LATTICE_BUILDERS, sorted(offenders - PENDING_LATTICE_BUILDERS)


def test_the_config_reference_is_generated_from_the_schema() -> None:
    """docs/config_reference.md equals what docs/gen_config_reference.py renders now, and
    lists every key of every section."""
    import importlib.util

    from hhml.config.schema import HHmLConfig
    from hhml.config.specs import field_specs

    spec = importlib.util.spec_from_file_location(
        "gen_config_reference", REPO / "docs" / "gen_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (REPO / "docs" / "config_reference.md").read_text(encoding="utf-8")
    assert text == module.render(), "stale: run python docs/gen_config_reference.py"
    for section, section_type in HHmLConfig.section_types().items():
        for name in field_specs(section_type):
            assert f"| `{section}.{name}` |" in text
