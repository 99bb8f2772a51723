"""The batched engine behind the Möbius vortex environments.

:class:`MobiusVortexCore` runs ``B`` environments in one
:class:`~hhml.core.resonance.Simulator` on a
:class:`~hhml.core.mobius.LatticeEnsemble` (one field ``[B, S, nu, nv]`` on the
device). Its state is :class:`~hhml.ml.env.state.EnvState`: every per-env
quantity is a tensor with leading dimension ``B`` on the same device. One
:meth:`MobiusVortexCore.step`, for every environment at once and with no host
synchronisation:

1. map the action ``[B, 23]`` to parameter values (:class:`ControlMap`) and apply
   them as per-env tensors: geometry and twist to the ensemble (its metric is
   recomputed in torch), the 14 field parameters to the simulator;
2. imprint antivortices on the vortices targeted by the annihilation controls
   (detections of the previous observation, :func:`annihilate`);
3. integrate ``env.steps_per_action`` simulator steps;
4. measure: vortex statistics, hexatic order and ages
   (:func:`~hhml.ml.env.measure.measure_vortices`), field moments, reward terms.

The density target of a step is part of the state: ``env.target_density`` for the
fixed-goal tasks; for ``env.task = setpoint_density`` a sequence of
``env.setpoint_count`` set-points per env and episode, values uniform in
``[env.setpoint_low, env.setpoint_high]`` and distinct switch steps uniform in
``1 … horizon − 1``, drawn from :attr:`MobiusVortexCore.reset_generator` at each reset
(after the initial field). The set-point in force before a step (the one the
observation shows) is the target of that step's reward; the observation then carries
:data:`SETPOINT_FEATURES` after the controls.

A field whose rms amplitude falls below ``env.collapse_rms``, or whose
integration produced NaN/Inf, ends its episode with ``env.failure_reward`` and a
termination code (:data:`~hhml.ml.env.state.TERMINATION_REASONS`). Resets are
masked (:meth:`MobiusVortexCore.reset`): the envs in a boolean mask get a fresh
field from the core's seeded device generator, the others are untouched.

The gymnasium and stable-baselines3 adapters (``vector.py``, ``mobius.py``,
``sb3.py``) copy what they return to NumPy, once per step, at the edge.

Public names: ``MobiusVortexCore``, ``StepOutput``, ``OBSERVATION_FEATURES``,
``SETPOINT_FEATURES``, ``FEATURE_BOUNDS``, ``default_env_config``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from hhml.config.controls import CONTROL_INDEX as _INDEX
from hhml.config.controls import LATTICE_CONTROLS as _GEOMETRY
from hhml.config.schema import HHmLConfig, LatticeConfig, SimulationConfig
from hhml.core.factory import ensemble_from_config
from hhml.core.resonance import Simulator, detect_vortices
from hhml.core.resonance.simulator import TENSOR_PARAMETERS
from hhml.errors import CheckpointError, ConfigError, NumericalInstabilityError
from hhml.ml.env.annihilation import annihilate
from hhml.ml.env.controls import CONTROLS, ControlMap
from hhml.ml.env.measure import measure_vortices
from hhml.ml.env.observables import berry_dennis_density, moment_tensors
from hhml.ml.env.rewards import combine, reward_terms
from hhml.ml.env.state import COLLAPSED, RUNNING, UNSTABLE, EnvState

__all__ = [
    "FEATURE_BOUNDS",
    "OBSERVATION_FEATURES",
    "SETPOINT_FEATURES",
    "MobiusVortexCore",
    "StepOutput",
    "default_env_config",
]

FloatArray = npt.NDArray[np.float64]

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

#: Appended after the controls for ``env.task = setpoint_density``, scaled to O(1) (the
#: agents do not normalise observations, and a density varies by hundredths).
SETPOINT_FEATURES: tuple[tuple[str, str], ...] = (
    (
        "target_density",
        "set-point ρ* the next reward is measured against, mapped from "
        "[setpoint_low, setpoint_high] to [−1, 1]",
    ),
    (
        "density_error",
        "(ρ − ρ*)/σ: the last measured density against that set-point, in units of "
        "density_tolerance, clipped to [−10, 10]",
    ),
    ("steps_to_switch", "env steps until the next set-point (or the episode end) / horizon"),
)
#: Bound of the ``density_error`` observation entry.
ERROR_BOUND = 10.0

#: The bound of the observation entries that have no natural one (NaN → 0, ±inf → ±bound).
OBS_BOUND = 1e6

#: The range of each observation feature (the ``Box`` bounds; every entry is clipped to its
#: range). Fractions, orders and the progress by definition; a plaquette winding has
#: |q| ≤ 2 (four wrapped phase differences, each in (−π, π]); the log features are ≥ 0; a
#: core depth 1 − ⟨|ψ|⟩_core/rms|ψ| is ≤ 1; the controls are in [−1, 1].
FEATURE_BOUNDS: dict[str, tuple[float, float]] = {
    "vortex_density": (0.0, 1.0),
    "null_density": (0.0, OBS_BOUND),
    "mean_abs_charge": (0.0, 2.0),
    "multi_charge_fraction": (0.0, 1.0),
    "net_charge_density": (-2.0, 2.0),
    "hexatic_order": (0.0, 1.0),
    "log_mean_age": (0.0, OBS_BOUND),
    "core_depth": (-OBS_BOUND, 1.0),
    "log_norm": (0.0, OBS_BOUND),
    "log_quartic": (0.0, OBS_BOUND),
    "log_gradient_energy": (0.0, OBS_BOUND),
    "log_k2": (0.0, OBS_BOUND),
    "episode_progress": (0.0, 1.0),
    "target_density": (-1.0, 1.0),
    "density_error": (-ERROR_BOUND, ERROR_BOUND),
    "steps_to_switch": (0.0, 1.0),
}

_DYNAMICS = tuple(c.name for c in CONTROLS if c.section == "dynamics")
assert set(_DYNAMICS) == set(TENSOR_PARAMETERS)


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


def finite_per_env(psi: Tensor) -> Tensor:
    """bool ``[B]``: every entry of env ``b``'s field ``psi[b]`` (any shape, real or
    complex) is finite.

    ``0·x`` is ``±0`` for a finite ``x`` and NaN for ``±inf`` or NaN, and a sum of zeros is
    exactly 0, so the sum of ``0·x`` over an env is 0 exactly when all its entries are
    finite: two passes over the field where ``isfinite(...).all()`` takes four (and ~9×
    the time on a CPU, complex64 ``[128, 2, 48, 12]``). No host synchronisation.
    """
    flat = psi.reshape(psi.shape[0], -1)
    if flat.is_complex():
        flat = torch.view_as_real(flat).flatten(1)
    return (flat * 0).sum(dim=1) == 0


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


@dataclass
class StepOutput:
    """What one :meth:`MobiusVortexCore.step` returns: tensors ``[B]`` on the device.

    Attributes
    ----------
    reward : Tensor
        float64, in [0, 1], or ``env.failure_reward`` for a failed env.
    terminated : Tensor
        bool: the env failed (collapsed or unstable).
    truncated : Tensor
        bool: the env reached ``env.horizon`` steps without failing.
    termination : Tensor
        int64 code of :data:`~hhml.ml.env.state.TERMINATION_REASONS` (0: running).
    targeted : Tensor
        int64: vortices targeted by the annihilation controls this step.
    terms : dict[str, Tensor]
        The four reward terms (float64).
    target : Tensor | None
        float64: the density target the reward was measured against (None: not given).
    """

    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    termination: Tensor
    targeted: Tensor
    terms: dict[str, Tensor]
    target: Tensor | None = None


class MobiusVortexCore:
    """``num_envs`` Möbius vortex environments advanced together (masked resets).

    Parameters
    ----------
    cfg
        Sections ``lattice`` (strips ≥ 2, embedded metric), ``dynamics`` (the
        initial/default parameters), ``simulation`` (dt, integrator, dtype,
        initial condition, seed), ``env`` and ``controls``.
    num_envs
        ``B``.
    device
        Torch device of the field and of every state tensor.
    """

    def __init__(self, cfg: HHmLConfig, num_envs: int, device: torch.device | str = "cpu") -> None:
        _check_config(cfg)
        self.cfg = cfg
        self.num_envs = B = num_envs
        self.device = torch.device(device)
        self.controls = ControlMap(cfg)
        self.defaults: FloatArray = self.controls.defaults(cfg)
        self.setpoint_task = cfg.env.task == "setpoint_density"
        extra = len(SETPOINT_FEATURES) if self.setpoint_task else 0
        self.obs_dim = len(OBSERVATION_FEATURES) + len(CONTROLS) + extra
        self._obs_bounds = tuple(
            torch.as_tensor(b, dtype=torch.float64, device=self.device)
            for b in self.observation_bounds()
        )
        lat, sim_cfg = cfg.lattice, cfg.simulation
        self._check_stability()
        defaults = np.tile(self.defaults, (B, 1))
        self.lattice = ensemble_from_config(cfg, defaults, device=self.device)
        self.sim = Simulator(
            self.lattice,
            cfg.dynamics,
            dt=sim_cfg.dt,
            integrator=sim_cfg.integrator,
            seed=sim_cfg.seed,
            batch=B,
            initial="zero",
            check_every=sim_cfg.check_every,
        )
        # a term whose control range is {0} never acts: the right-hand side skips it
        self._active = [
            k for k in _DYNAMICS if self.controls.low[_INDEX[k]] or self.controls.high[_INDEX[k]]
        ]
        chart = self.lattice.strip
        self.plaquettes = lat.strips * chart.plaquette_shape[0] * chart.plaquette_shape[1]
        self.plaquette_area = float(self.lattice.area_weights().mean()) * (
            chart.plaquette_shape[1] / chart.nv
        )
        #: draws the initial fields of resets (seeded by reset(seed))
        self.reset_generator = torch.Generator(device=self.device)
        self.reset_generator.manual_seed(sim_cfg.seed)
        f64 = torch.float64
        self._defaults = torch.as_tensor(defaults, dtype=f64, device=self.device)
        self.state = EnvState.initial(
            self._defaults, lat.strips, cfg.env.max_vortices, *self._draw_targets()
        )
        self._apply(self.state.values)

    # -------------------------------------------------------------- set-up
    def _check_stability(self) -> None:
        """The default dt must be stable everywhere in the control box: build the
        worst corners once and let the simulator's stability check decide."""
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
        base = self.cfg.dynamics
        params = []
        for row in worst:
            changes: dict[str, Any] = {k: float(row[_INDEX[k]]) for k in _DYNAMICS}
            changes["boundary_winding"] = round(changes["boundary_winding"])
            params.append(dataclasses.replace(base, **changes))
        try:
            ens = ensemble_from_config(self.cfg, worst, device=self.device)
            Simulator(ens, params, dt=self.cfg.simulation.dt, batch=16, initial="zero")
        except NumericalInstabilityError as exc:
            raise ConfigError(
                f"simulation.dt = {self.cfg.simulation.dt:g} is not stable over the control "
                f"ranges (largest diffusion, filter, coupling, pinning): {exc}"
            ) from None
        seeding = hi[_INDEX["pair_seeding"]] * self.cfg.simulation.dt
        if seeding > 1.0:
            raise ConfigError(
                f"controls.pair_seeding_high × simulation.dt = {seeding:g} > 1: at most one "
                "pair can be seeded per simulator step; lower controls.pair_seeding_high or dt"
            )

    def _apply(self, values: Tensor) -> None:
        """Control values ``[B, 23]`` → ensemble geometry and simulator parameters."""
        self.lattice.set_geometry_tensors(**{k: values[:, _INDEX[k]] for k in _GEOMETRY})
        # dt was checked over the whole control box in _check_stability
        self.sim.set_parameter_tensors(
            {k: values[:, _INDEX[k]] for k in _DYNAMICS}, active=self._active
        )

    def _draw_targets(self) -> tuple[Tensor, Tensor]:
        """Density targets and switch steps ``[B, K]`` of a new episode for every env.

        The fixed-goal tasks: ``env.target_density`` from step 0 (``K = 1``, nothing
        drawn). ``setpoint_density``: values uniform in ``[setpoint_low, setpoint_high]``
        and ``K − 1`` distinct switch steps uniform in ``1 … horizon − 1`` (sorted), from
        :attr:`reset_generator` on the device.
        """
        env, B, dev = self.cfg.env, self.num_envs, self.device
        f64, i64 = torch.float64, torch.int64
        if not self.setpoint_task:
            targets = torch.full((B, 1), env.target_density, dtype=f64, device=dev)
            return targets, torch.zeros((B, 1), dtype=i64, device=dev)
        K, gen = env.setpoint_count, self.reset_generator
        u = torch.rand((B, K), dtype=f64, device=dev, generator=gen)
        targets = env.setpoint_low + (env.setpoint_high - env.setpoint_low) * u
        # a random subset of K − 1 of the steps 1 … horizon − 1: the first K − 1 of a
        # random permutation, sorted
        order = torch.rand((B, env.horizon - 1), dtype=f64, device=dev, generator=gen)
        later = order.argsort(dim=1)[:, : K - 1] + 1
        first = torch.zeros((B, 1), dtype=i64, device=dev)
        return targets, torch.cat([first, later.sort(dim=1).values], dim=1)

    # ---------------------------------------------------------------- reset
    def seed(self, seed: int) -> None:
        """Re-seed the reset, noise and pair-seeding generators and set the simulator
        clock to 0 (the source phase e^{−iωt} starts again)."""
        self.reset_generator.manual_seed(seed)
        self.sim.generator.manual_seed(seed)
        self.sim.t = 0.0
        self.sim.step_count = 0

    def reset(self, mask: Tensor | None = None, field: Tensor | None = None) -> None:
        """Start new episodes for the envs in ``mask`` (bool ``[B]``; None: all).

        Their field is drawn from :attr:`reset_generator` (``simulation.initial``),
        or taken from ``field`` (``[B, S, nu, nv]``, e.g. a stored state), their
        controls return to the config's values, clocks and tracks to zero, and they
        are measured; the other envs are untouched. The initial fields of all ``B``
        envs are drawn, so the stream does not depend on the mask; so are the
        set-points of ``setpoint_density`` (after the fields), of which the envs in
        ``mask`` take theirs.
        """
        B, dev = self.num_envs, self.device
        mask = torch.ones(B, dtype=torch.bool, device=dev) if mask is None else mask
        if tuple(mask.shape) != (B,) or mask.dtype != torch.bool or mask.device != dev:
            raise ConfigError(f"reset mask must be a bool tensor ({B},) on {dev}")
        sim_cfg = self.cfg.simulation
        psi = self.sim.psi
        if field is not None:
            self.lattice.check_field(field, "field")
            fresh = field.to(device=dev, dtype=psi.dtype)
        elif sim_cfg.initial == "noise":
            fresh = sim_cfg.initial_amplitude * torch.randn(
                psi.shape, dtype=psi.dtype, device=dev, generator=self.reset_generator
            )
        elif sim_cfg.initial == "uniform":
            fresh = torch.full_like(psi, sim_cfg.initial_amplitude)
        else:
            fresh = torch.zeros_like(psi)
        self.sim.psi = torch.where(mask[:, None, None, None], fresh, psi)
        start = EnvState.initial(
            self._defaults,
            self.lattice.num_strips,
            self.cfg.env.max_vortices,
            *self._draw_targets(),
        )
        state = self.state.where(mask, start)
        self._apply(state.values)
        self.state = state.where(mask, self._measure(start))

    # ----------------------------------------------------------------- step
    def step(self, action: Tensor) -> StepOutput:
        """Advance every env by one action ``[B, 23]`` (float, in [−1, 1]).

        Shape, dtype and device are checked on the host (no synchronisation);
        finiteness is not: the adapters check it before calling. A non-finite
        entry is clipped into [−1, 1] like any other value (NaN stays NaN and the
        parameters it drives make the env fail as unstable).
        """
        B = self.num_envs
        if not isinstance(action, Tensor) or tuple(action.shape) != (B, len(CONTROLS)):
            shape = tuple(action.shape) if isinstance(action, Tensor) else type(action).__name__
            raise ConfigError(f"action has shape {shape}; expected ({B}, {len(CONTROLS)})")
        if action.device != self.device:
            raise ConfigError(f"action is on {action.device}; the environment is on {self.device}")
        if not action.is_floating_point():
            raise ConfigError(f"action has dtype {action.dtype}; expected a floating dtype")
        env = self.cfg.env
        target = self.state.current_target()  # the set-point the last observation showed
        values = self.controls.to_values_tensor(action.to(torch.float64))
        self._apply(values)
        state = dataclasses.replace(self.state, values=values)
        targeted = torch.zeros(B, dtype=torch.int64, device=self.device)
        if state.vortices is not None:
            v = values
            psi, targeted = annihilate(
                self.sim.psi,
                self.lattice.strip,
                state.vortices,
                v[:, _INDEX["antivortex_strength"]],
                v[:, _INDEX["annihilation_radius"]],
                v[:, _INDEX["quality_threshold"]],
                v[:, _INDEX["preserve_ratio"]],
                env.max_targets,
            )
            self.sim.psi = psi
        t0 = self.sim.t
        self.sim.advance(env.steps_per_action)
        psi = self.sim.psi
        finite = finite_per_env(psi)
        if env.steps_per_action > 0:
            # the simulator's own new field (nothing else holds it): zero failed envs in place
            psi.masked_fill_(~finite[:, None, None, None], 0)
        else:
            self.sim.psi = torch.where(finite[:, None, None, None], psi, torch.zeros_like(psi))
        state.time = state.time + (self.sim.t - t0)
        state.elapsed = state.elapsed + 1
        self.state = state = self._measure(state)
        m = state.measured
        unstable = ~finite
        collapsed = (m["norm"].sqrt() < env.collapse_rms) & finite
        failed = collapsed | unstable
        terms = reward_terms(
            env, m["vortex_density"], m["hexatic_order"], m["mean_age"], m["core_depth"], target
        )
        code = torch.full((B,), RUNNING, dtype=torch.int64, device=self.device)
        code = torch.where(collapsed, COLLAPSED, code)
        code = torch.where(unstable, UNSTABLE, code)
        return StepOutput(
            reward=combine(env, terms, failed),
            terminated=failed,
            truncated=(state.elapsed >= env.horizon) & ~failed,
            termination=code,
            targeted=targeted,
            terms=terms,
            target=target,
        )

    def _measure(self, state: EnvState) -> EnvState:
        """Detect vortices, update their ages and compute every per-env feature."""
        env = self.cfg.env
        psi = self.sim.psi
        vort, tracks = measure_vortices(
            psi,
            self.lattice,
            state.tracks,
            state.time - state.last_time,
            max_vortices=env.max_vortices,
            track_distance=env.track_distance,
            min_vortices_for_order=env.min_vortices_for_order,
        )
        measured = {
            "vortex_density": vort.vortex_density,
            "mean_abs_charge": vort.mean_abs_charge,
            "multi_charge_fraction": vort.multi_charge_fraction,
            "net_charge_density": vort.net_charge_density,
            "hexatic_order": vort.hexatic_order,
            "mean_age": vort.mean_age,
            "core_depth": vort.core_depth,
            "count": vort.count,
        }
        moments = moment_tensors(psi, self.lattice)
        measured["null_density"] = berry_dennis_density(moments["k2"], self.plaquette_area)
        measured.update(moments)
        return dataclasses.replace(
            state, tracks=tracks, vortices=vort, measured=measured, last_time=state.time
        )

    def observation_bounds(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``(low, high)`` ``[obs_dim]`` float32: the range of each observation entry
        (:data:`FEATURE_BOUNDS`, the controls in [−1, 1]); the gymnasium ``Box``."""
        names = [name for name, _ in OBSERVATION_FEATURES]
        extra = [name for name, _ in SETPOINT_FEATURES] if self.setpoint_task else []
        low = [FEATURE_BOUNDS[n][0] for n in names] + [-1.0] * len(CONTROLS)
        high = [FEATURE_BOUNDS[n][1] for n in names] + [1.0] * len(CONTROLS)
        low += [FEATURE_BOUNDS[n][0] for n in extra]
        high += [FEATURE_BOUNDS[n][1] for n in extra]
        return np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)

    def observation(self) -> Tensor:
        """Observation ``[B, obs_dim]`` float32 (on the device) from the last measurement,
        each entry clipped to its range (:meth:`observation_bounds`; NaN → 0)."""
        m = self.state.measured
        feats = torch.stack(
            [
                m["vortex_density"],
                m["null_density"],
                m["mean_abs_charge"],
                m["multi_charge_fraction"],
                m["net_charge_density"],
                m["hexatic_order"],
                torch.log1p(m["mean_age"]),
                m["core_depth"],
                torch.log1p(m["norm"]),
                torch.log1p(m["quartic"]),
                torch.log1p(m["gradient"]),
                torch.log1p(m["k2"]),
                self.state.elapsed.to(torch.float64) / self.cfg.env.horizon,
            ],
            dim=1,
        )
        parts = [feats, self.controls.to_action_tensor(self.state.values)]
        if self.setpoint_task:
            env = self.cfg.env
            target = self.state.current_target()
            mid = 0.5 * (env.setpoint_high + env.setpoint_low)
            half = 0.5 * (env.setpoint_high - env.setpoint_low)
            error = ((m["vortex_density"] - target) / env.density_tolerance).clamp(
                -ERROR_BOUND, ERROR_BOUND
            )
            steps = self.state.steps_to_switch(env.horizon).to(torch.float64) / env.horizon
            parts.append(torch.stack([(target - mid) / half, error, steps], dim=1))
        obs = torch.cat(parts, dim=1)
        obs = torch.nan_to_num(obs, nan=0.0, posinf=OBS_BOUND, neginf=-OBS_BOUND)
        low, high = self._obs_bounds
        return torch.maximum(torch.minimum(obs, high), low).to(torch.float32)

    def info(self, out: StepOutput) -> dict[str, Any]:
        """The step's diagnostics as tensors ``[B]`` (the adapters copy them to NumPy)."""
        m, v = self.state.measured, self.state.values
        vortex = {
            "density": m["vortex_density"],
            "null_density": m["null_density"],
            "count": m["count"],
            "targeted": out.targeted.to(torch.float64),
            "mean_age": m["mean_age"],
            "hexatic_order": m["hexatic_order"],
        }
        if self.setpoint_task and out.target is not None:
            vortex["target_density"] = out.target
        return {
            "reward_terms": out.terms,
            "params": {c.name: v[:, k] for k, c in enumerate(CONTROLS)},
            "vortex": vortex,
            "termination": out.termination,
        }

    # ------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (tensors, scalars, lists, dicts)."""
        return {
            "state": self.state.state_dict(),
            "reset_generator": self.reset_generator.get_state(),
            "simulator": self.sim.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same config and number of envs)."""
        missing = {"state", "reset_generator", "simulator"} - set(state)
        if missing:
            raise CheckpointError(
                f"environment state is missing {sorted(missing)} (written by an older HHmL "
                "version? the batched env's checkpoint layout changed in 0.2)"
            )
        if self.setpoint_task and "targets" not in state["state"]:
            raise CheckpointError(
                "environment state has no set-points (written before env.task = "
                "setpoint_density existed); it cannot continue a setpoint_density run"
            )
        self.state = EnvState.from_state_dict(state["state"], self.state)
        self.reset_generator.set_state(state["reset_generator"])
        self._apply(self.state.values)
        self.sim.load_state_dict(state["simulator"])

    def snapshot(self) -> dict[str, Any]:
        """The field and its vortices for analysis/dashboards (CPU tensors).

        Keys: ``psi`` ``[B, S, nu, nv]`` complex; ``vortex_index`` ``[K, 4]`` (env, strip,
        i, j), ``vortex_position`` ``[K, 2]`` (u, v), ``vortex_charge`` ``[K]``,
        ``vortex_depth`` ``[K]`` (all vortices, not only the tracked ones); ``values``
        ``[B, 23]`` and ``control_names``; ``time`` ``[B]`` (time since each env's
        reset); ``lattice`` (geometry per env), ``chart`` (nu, nv, strips, length,
        half_width, topology, edge, metric, strip_spacing), ``area_weights``
        ``[B, S, nu, nv]``; ``measured`` (the per-env features of the last observation:
        vortex_density, null_density, norm, k2, ... each ``[B]``).
        """
        vort = detect_vortices(self.sim.psi, self.lattice)
        return {
            "psi": self.sim.psi.detach().cpu(),
            "vortex_index": vort.index.cpu(),
            "vortex_position": vort.position.detach().cpu(),
            "vortex_charge": vort.charge.cpu(),
            "vortex_depth": vort.depth.detach().cpu(),
            "values": self.state.values.detach().cpu().clone(),
            "control_names": [c.name for c in CONTROLS],
            "time": self.state.time.cpu().clone(),
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
            "measured": {k: v.cpu().clone() for k, v in self.state.measured.items()},
        }
