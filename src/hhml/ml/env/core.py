"""The batched engine behind the Möbius vortex environments.

:class:`MobiusVortexCore` runs ``B`` environments in one
:class:`~hhml.core.resonance.Simulator` on a
:class:`~hhml.core.mobius.LatticeEnsemble` (one field ``[B, S, nu, nv]`` on the
device). One step, for every environment at once:

1. map the action ``[B, 23]`` to parameter values (:class:`ControlMap`) and apply
   them: geometry and twist to the ensemble, the 14 field parameters to the
   simulator;
2. imprint antivortices on the vortices targeted by the annihilation controls
   (detections of the previous observation, :func:`annihilate`);
3. integrate ``env.steps_per_action`` simulator steps;
4. detect vortices with the fixed winding-number detector, link them to the
   previous detections (:class:`~hhml.ml.env.ages.VortexAges`, for their ages),
   compute the observation features and the reward terms.

A field whose rms amplitude falls below ``env.collapse_rms``, or whose
integration produced NaN/Inf, ends its episode with ``env.failure_reward`` and a
reason in ``info["termination"]``.

Public names: ``MobiusVortexCore``, ``OBSERVATION_FEATURES``, ``default_env_config``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from hhml.config.schema import FieldParams, HHmLConfig, LatticeConfig, SimulationConfig
from hhml.core.mobius import LatticeEnsemble
from hhml.core.resonance import Simulator, detect_vortices
from hhml.core.resonance.vortices import VortexSet
from hhml.errors import ConfigError, NumericalInstabilityError
from hhml.ml.env.ages import VortexAges
from hhml.ml.env.annihilation import annihilate
from hhml.ml.env.controls import CONTROLS, ControlMap
from hhml.ml.env.observables import berry_dennis_density, field_moments, hexatic_order
from hhml.ml.env.rewards import combine, reward_terms
from hhml.utils import resolve_complex_dtype

__all__ = ["OBSERVATION_FEATURES", "MobiusVortexCore", "default_env_config"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Observation layout: these features, then the 23 controls normalised to [−1, 1].
OBSERVATION_FEATURES: tuple[tuple[str, str], ...] = (
    ("vortex_density", "fraction of plaquettes with non-zero winding (all strips)"),
    ("null_density", "Berry–Dennis density ⟨k²⟩/4π × plaquette area of a Gaussian field"),
    ("mean_abs_charge", "mean |q| of the detected vortices (0 if none)"),
    ("multi_charge_fraction", "fraction of vortices with |q| ≥ 2"),
    ("net_charge_density", "Σq per plaquette"),
    ("hexatic_order", "mean local |ψ₆| of the vortex positions, averaged over strips"),
    ("log_mean_age", "log(1 + mean age of the live tracked vortices / time unit)"),
    ("core_depth", "mean core depth of the vortices (1 = perfect zero)"),
    ("log_norm", "log(1 + ⟨|ψ|²⟩), area-weighted"),
    ("log_quartic", "log(1 + ⟨|ψ|⁴⟩)"),
    ("log_gradient_energy", "log(1 + ⟨|∇ψ|²⟩)"),
    ("log_k2", "log(1 + ⟨k²⟩), spectral centroid of |ψ_k|²"),
    ("episode_progress", "elapsed steps / horizon"),
)

#: Every observation entry is clipped to [−OBS_BOUND, OBS_BOUND] (NaN → 0).
OBS_BOUND = 1e6

_INDEX = {c.name: k for k, c in enumerate(CONTROLS)}
_GEOMETRY = ("aspect", "kappa", "delta", "coupling_range", "twist")
_DYNAMICS = tuple(c.name for c in CONTROLS if c.section == "dynamics")


def default_env_config() -> HHmLConfig:
    """The config ``gymnasium.make("hhml/MobiusVortex-v0")`` uses: a stack of two
    embedded 48 × 12 Möbius strips (so that all 23 controls act), ``dt = 0.1``
    (stable over the whole default control box) and the defaults of every other
    section."""
    lattice = LatticeConfig(
        nu=48, nv=12, strips=2, strip_spacing=2.0, aspect=8.0, metric="embedded", edge="neumann"
    )
    simulation = SimulationConfig(dt=0.1)
    return HHmLConfig(lattice=lattice, simulation=simulation)


def _check_config(cfg: HHmLConfig) -> None:
    lat = cfg.lattice
    if lat.strips < 2:
        raise ConfigError(
            f"lattice.strips = {lat.strips}: the Möbius vortex environment needs a stack of "
            "at least 2 strips, otherwise the controls kappa, delta, coupling_range and "
            "coupling have no effect; set lattice.strips=2 (see configs/lattice/env.yaml)"
        )
    if lat.metric != "embedded":
        raise ConfigError(
            "lattice.metric = 'flat': the environment needs metric='embedded', otherwise the "
            "geometry controls (aspect, kappa, delta) have no effect"
        )
    if cfg.simulation.integrator == "etd":
        raise ConfigError(
            "simulation.integrator = 'etd' works on a single flat strip only; use 'rk4'"
        )


class MobiusVortexCore:
    """``num_envs`` Möbius vortex environments advanced together (no autoreset).

    Parameters
    ----------
    cfg
        Sections ``lattice`` (strips ≥ 2, embedded metric), ``dynamics`` (the
        initial/default parameters), ``simulation`` (dt, integrator, dtype,
        initial condition, seed), ``env`` and ``controls``.
    num_envs
        ``B``.
    device
        Torch device of the field.
    """

    def __init__(self, cfg: HHmLConfig, num_envs: int, device: torch.device | str = "cpu") -> None:
        _check_config(cfg)
        self.cfg = cfg
        self.num_envs = B = num_envs
        self.controls = ControlMap(cfg)
        self.defaults = self.controls.defaults(cfg)
        self.values: FloatArray = np.tile(self.defaults, (B, 1))
        self.obs_dim = len(OBSERVATION_FEATURES) + len(CONTROLS)
        lat, sim_cfg = cfg.lattice, cfg.simulation
        self._lattice_kwargs = dict(
            strip_spacing=lat.strip_spacing,
            length=lat.length,
            half_width=lat.half_width,
            topology=lat.topology,
            edge=lat.edge,
            metric=lat.metric,
            dtype=resolve_complex_dtype(sim_cfg.dtype),
            device=device,
        )
        self._check_stability()
        self.lattice = LatticeEnsemble(
            B, lat.strips, lat.nu, lat.nv, **self._geometry(self.values), **self._lattice_kwargs  # type: ignore[arg-type]
        )
        self.sim = Simulator(
            self.lattice,
            self._params(self.values),
            dt=sim_cfg.dt,
            integrator=sim_cfg.integrator,
            seed=sim_cfg.seed,
            batch=B,
            initial="zero",
            check_every=sim_cfg.check_every,
        )
        chart = self.lattice.strip
        self.plaquettes = lat.strips * chart.plaquette_shape[0] * chart.plaquette_shape[1]
        self.plaquette_area = float(self.lattice.area_weights().mean()) * (
            chart.plaquette_shape[1] / chart.nv
        )
        self.rngs = [np.random.default_rng([sim_cfg.seed, b]) for b in range(B)]
        self.elapsed = np.zeros(B, dtype=np.int64)
        self.time = np.zeros(B, dtype=np.float64)
        self.ages = VortexAges(
            B * lat.strips, chart.length, chart.half_width, chart.topology, cfg.env.track_distance
        )
        self._last_time = np.zeros(B, dtype=np.float64)
        self._vortices: VortexSet | None = None

    # -------------------------------------------------------------- set-up
    def _geometry(self, values: FloatArray) -> dict[str, FloatArray]:
        return {k: values[:, _INDEX[k]].copy() for k in _GEOMETRY}

    def _params(self, values: FloatArray) -> list[FieldParams]:
        base = self.cfg.dynamics
        out = []
        for row in values:
            changes: dict[str, Any] = {k: float(row[_INDEX[k]]) for k in _DYNAMICS}
            changes["boundary_winding"] = round(changes["boundary_winding"])
            out.append(dataclasses.replace(base, **changes))
        return out

    def _check_stability(self) -> None:
        """The default dt must be stable everywhere in the control box: build the
        worst corners once and let the simulator's stability check decide."""
        lat = self.cfg.lattice
        lo, hi = self.controls.low, self.controls.high
        corners = np.array(
            [
                [(hi if (m >> j) & 1 else lo)[_INDEX[k]] for j, k in enumerate(_GEOMETRY[:4])]
                for m in range(16)
            ]
        )
        worst = np.tile(self.defaults, (16, 1))
        for j, k in enumerate(_GEOMETRY[:4]):
            worst[:, _INDEX[k]] = corners[:, j]
        for k in ("diffusion", "spectral_filter", "coupling", "pinning"):
            worst[:, _INDEX[k]] = hi[_INDEX[k]]
        worst[:, _INDEX["dispersion"]] = max(
            abs(lo[_INDEX["dispersion"]]), abs(hi[_INDEX["dispersion"]])
        )
        try:
            ens = LatticeEnsemble(
                16, lat.strips, lat.nu, lat.nv, **self._geometry(worst), **self._lattice_kwargs  # type: ignore[arg-type]
            )
            Simulator(ens, self._params(worst), dt=self.cfg.simulation.dt, batch=16, initial="zero")
        except NumericalInstabilityError as exc:
            raise ConfigError(
                f"simulation.dt = {self.cfg.simulation.dt:g} is not stable over the control "
                f"ranges (largest diffusion, filter, coupling, pinning): {exc}"
            ) from None

    def _apply(self) -> None:
        self.lattice.set_geometry(**self._geometry(self.values))
        # dt was checked over the whole control box in _check_stability
        self.sim.update_params(self._params(self.values), check_stability=False)

    # ---------------------------------------------------------------- reset
    def reset(self, mask: BoolArray, seeds: list[int | None]) -> None:
        """Start new episodes for the envs in ``mask`` (seeds re-seed their RNGs)."""
        amp = self.cfg.simulation.initial_amplitude
        psi = self.sim.psi.clone()
        field_shape = tuple(psi.shape[1:])
        for b in np.flatnonzero(mask):
            seed = seeds[b]
            if seed is not None:
                self.rngs[b] = np.random.default_rng(seed)
            rng = self.rngs[b]
            init = self.cfg.simulation.initial
            if init == "noise":
                z = rng.standard_normal((2, *field_shape)) * (amp / math.sqrt(2.0))
                fresh = torch.complex(torch.from_numpy(z[0]), torch.from_numpy(z[1]))
            elif init == "uniform":
                fresh = torch.full(field_shape, amp, dtype=torch.complex128)
            else:
                fresh = torch.zeros(field_shape, dtype=torch.complex128)
            psi[b] = fresh.to(psi.dtype)
            self.values[b] = self.defaults
            self.elapsed[b] = 0
            self.time[b] = 0.0
            self._last_time[b] = 0.0
            for s in range(self.lattice.num_strips):
                self.ages.clear(b * self.lattice.num_strips + s)
        self.sim.psi = psi
        self._apply()

    def restart_simulator(self, seed: int) -> None:
        """Re-seed the simulator's noise and pair-seeding generators and set its clock
        to 0 (the source phase e^{−iωt} starts again): a seeded reset of every env."""
        self.sim.generator.manual_seed(seed)
        self.sim.host_rng = np.random.default_rng(seed)
        self.sim.t = 0.0
        self.sim.step_count = 0

    # ----------------------------------------------------------------- step
    def step(self, action: npt.ArrayLike) -> tuple[FloatArray, BoolArray, dict[str, Any]]:
        """Advance every env; returns rewards ``[B]``, failures ``[B]`` and the info dict."""
        a = np.asarray(action, dtype=np.float64).reshape(self.num_envs, len(CONTROLS))
        if not np.all(np.isfinite(a)):
            raise ConfigError("action contains NaN or Inf; actions must be finite in [−1, 1]")
        self.values = self.controls.to_values(a)
        self._apply()
        v = self.values
        targeted = np.zeros(self.num_envs, dtype=np.int64)
        if self._vortices is not None:
            psi, targeted = annihilate(
                self.sim.psi,
                self.lattice.strip,
                self._vortices,
                v[:, _INDEX["antivortex_strength"]],
                v[:, _INDEX["annihilation_radius"]],
                v[:, _INDEX["quality_threshold"]],
                v[:, _INDEX["preserve_ratio"]],
                self.cfg.env.max_targets,
            )
            self.sim.psi = psi
        unstable = np.zeros(self.num_envs, dtype=bool)
        reason = ""
        t0 = self.sim.t
        try:
            self.sim.step(self.cfg.env.steps_per_action)
        except NumericalInstabilityError as exc:
            reason = str(exc)
            trial = self.sim.integrator.step(self.sim.psi, self.sim.t, self.sim.dt)
            finite = torch.isfinite(torch.view_as_real(trial)).flatten(1).all(dim=1)
            unstable = ~finite.cpu().numpy()
            psi = self.sim.psi.clone()
            psi[torch.as_tensor(unstable, device=psi.device)] = 0.0
            self.sim.psi = psi
        self.time += self.sim.t - t0
        self.elapsed += 1
        measured = self.measure()
        collapsed = (np.sqrt(measured["norm"]) < self.cfg.env.collapse_rms) & ~unstable
        failed = collapsed | unstable
        terms = reward_terms(
            self.cfg.env,
            measured["vortex_density"],
            measured["hexatic_order"],
            measured["mean_age"],
            measured["core_depth"],
        )
        reward = combine(self.cfg.env, terms, failed)
        termination = np.full(self.num_envs, "", dtype=object)
        termination[collapsed] = (
            f"collapsed: rms |psi| < env.collapse_rms = {self.cfg.env.collapse_rms:g}"
        )
        termination[unstable] = f"numerical instability: {reason}"
        info: dict[str, Any] = {
            "reward_terms": terms,
            "params": {c.name: v[:, k].copy() for k, c in enumerate(CONTROLS)},
            "vortex": {
                "density": measured["vortex_density"],
                "null_density": measured["null_density"],
                "count": measured["count"],
                "targeted": targeted.astype(np.float64),
                "mean_age": measured["mean_age"],
                "hexatic_order": measured["hexatic_order"],
            },
            "termination": termination,
        }
        return reward, failed, info

    def measure(self) -> dict[str, FloatArray]:
        """Detect vortices, update their ages and compute every per-env feature."""
        psi = self.sim.psi
        vort = detect_vortices(psi, self.lattice)
        self._vortices = vort
        B, S = self.num_envs, self.lattice.num_strips
        chart = self.lattice.strip
        idx = vort.index.cpu().numpy()
        charge = vort.charge.cpu().numpy()
        depth = vort.depth.detach().cpu().numpy()
        pos = vort.position.detach().cpu().numpy().astype(np.float64)
        moments = field_moments(psi, self.lattice)
        out: dict[str, FloatArray] = {
            k: np.zeros(B)
            for k in (
                "vortex_density",
                "mean_abs_charge",
                "multi_charge_fraction",
                "net_charge_density",
                "hexatic_order",
                "mean_age",
                "core_depth",
                "count",
            )
        }
        for b in range(B):
            mine = idx[:, 0] == b
            q = charge[mine]
            n = int(mine.sum())
            out["count"][b] = n
            out["vortex_density"][b] = n / self.plaquettes
            if n:
                out["mean_abs_charge"][b] = float(np.abs(q).mean())
                out["multi_charge_fraction"][b] = float((np.abs(q) >= 2).mean())
                out["net_charge_density"][b] = float(q.sum()) / self.plaquettes
                out["core_depth"][b] = float(depth[mine].mean())
            orders: list[float] = []
            ages: list[float] = []
            for s in range(S):
                sel = mine & (idx[:, 1] == s)
                ages.extend(
                    self.ages.update(
                        b * S + s, pos[sel], charge[sel], self.time[b] - self._last_time[b]
                    ).tolist()
                )
                orders.append(
                    hexatic_order(
                        pos[sel],
                        chart.length,
                        chart.half_width,
                        chart.topology,
                        self.cfg.env.min_vortices_for_order,
                    )
                )
            out["hexatic_order"][b] = float(np.mean(orders))
            out["mean_age"][b] = float(np.mean(ages)) if ages else 0.0
        self._last_time = self.time.copy()
        out["null_density"] = berry_dennis_density(moments["k2"], self.plaquette_area)
        out.update(moments)
        self._last = out
        return out

    def observation(self) -> npt.NDArray[np.float32]:
        """Observation ``[B, obs_dim]`` float32 from the last :meth:`measure`."""
        m = self._last
        feats = np.stack(
            [
                m["vortex_density"],
                m["null_density"],
                m["mean_abs_charge"],
                m["multi_charge_fraction"],
                m["net_charge_density"],
                m["hexatic_order"],
                np.log1p(m["mean_age"]),
                m["core_depth"],
                np.log1p(m["norm"]),
                np.log1p(m["quartic"]),
                np.log1p(m["gradient"]),
                np.log1p(m["k2"]),
                self.elapsed / self.cfg.env.horizon,
            ],
            axis=1,
        )
        obs = np.concatenate([feats, self.controls.to_action(self.values)], axis=1)
        obs = np.nan_to_num(obs, nan=0.0, posinf=OBS_BOUND, neginf=-OBS_BOUND)
        out: npt.NDArray[np.float32] = np.clip(obs, -OBS_BOUND, OBS_BOUND).astype(np.float32)
        return out

    # ------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (tensors, scalars, lists, dicts)."""
        return {
            "values": torch.from_numpy(self.values.copy()),
            "elapsed": torch.from_numpy(self.elapsed.copy()),
            "time": torch.from_numpy(self.time.copy()),
            "rngs": [r.bit_generator.state for r in self.rngs],
            "simulator": self.sim.state_dict(),
            "ages": self.ages.state_dict(),
            "last_time": torch.from_numpy(self._last_time.copy()),
            "measured": {k: torch.from_numpy(np.asarray(v).copy()) for k, v in self._last.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same config and number of envs)."""
        missing = {"values", "elapsed", "time", "rngs", "simulator", "ages", "last_time"} - set(
            state
        )
        if missing:
            raise ConfigError(f"environment state is missing {sorted(missing)}")
        values = state["values"].numpy().astype(np.float64)
        if values.shape != self.values.shape:
            raise ConfigError(
                f"environment state has {values.shape[0]} envs × {values.shape[1]} controls; "
                f"this environment has {self.values.shape}"
            )
        self.values = values
        self.elapsed = state["elapsed"].numpy().astype(np.int64)
        self.time = state["time"].numpy().astype(np.float64)
        for r, s in zip(self.rngs, state["rngs"], strict=True):
            r.bit_generator.state = s
        self._apply()
        self.sim.load_state_dict(state["simulator"])
        self.ages.load_state_dict(state["ages"])
        self._last_time = state["last_time"].numpy().astype(np.float64)
        self._vortices = detect_vortices(self.sim.psi, self.lattice)
        if "measured" in state:
            self._last = {k: v.numpy().astype(np.float64) for k, v in state["measured"].items()}

    def snapshot(self) -> dict[str, Any]:
        """The field and its vortices for analysis/dashboards (CPU tensors).

        Keys: ``psi`` ``[B, S, nu, nv]`` complex; ``vortex_index`` ``[K, 4]`` (env, strip,
        i, j), ``vortex_position`` ``[K, 2]`` (u, v), ``vortex_charge`` ``[K]``,
        ``vortex_depth`` ``[K]``; ``values`` ``[B, 23]`` and ``control_names``; ``time``
        ``[B]`` (time since each env's reset); ``lattice`` (geometry per env), ``chart``
        (nu, nv, strips, length, half_width, topology, edge, metric, strip_spacing),
        ``area_weights``
        ``[B, S, nu, nv]``; ``measured`` (the per-env features of the last observation:
        vortex_density, null_density, norm, k2, ... each ``[B]``).
        """
        vort = (
            self._vortices
            if self._vortices is not None
            else detect_vortices(self.sim.psi, self.lattice)
        )
        return {
            "psi": self.sim.psi.detach().cpu(),
            "vortex_index": vort.index.cpu(),
            "vortex_position": vort.position.detach().cpu(),
            "vortex_charge": vort.charge.cpu(),
            "vortex_depth": vort.depth.detach().cpu(),
            "values": torch.from_numpy(self.values.copy()),
            "control_names": [c.name for c in CONTROLS],
            "time": torch.from_numpy(self.time.copy()),
            "lattice": dict(self.lattice.state_dict()),
            "chart": {
                "nu": self.lattice.nu,
                "nv": self.lattice.nv,
                "strips": self.lattice.num_strips,
                "length": self.lattice.strip.length,
                "half_width": self.lattice.strip.half_width,
                "topology": self.lattice.strip.topology,
                "edge": self.lattice.strip.edge,
                "metric": self.lattice.metric,
                "strip_spacing": self.lattice.strip_spacing,
            },
            "area_weights": self.lattice.area_weights().cpu(),
            "measured": {k: torch.from_numpy(np.asarray(v).copy()) for k, v in self._last.items()},
        }
