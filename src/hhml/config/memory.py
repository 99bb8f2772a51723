"""Memory pre-flight: estimate a training run's peak memory from its config alone.

A config can be valid key by key and still need more memory than the machine has
(``lattice.nu=16384 lattice.nv=4096``, ``agent.buffer_size=10**12``). Without a
check such a run fails deep inside an allocation, after minutes of set-up, with an
allocator traceback. :func:`check_memory` compares :func:`estimate_memory` with the
device's free memory before anything is allocated and raises a
:class:`~hhml.errors.ConfigError` that names the largest components and the keys
that shrink them. The model (per tensor, with dtypes) and its comparison with
measured peaks are documented in ``docs/memory.md``.

Public names: ``MemoryEstimate``, ``estimate_memory``, ``available_memory``,
``check_memory``, ``COMPONENT_KEYS``, ``MOBIUS_OBS_DIM``, ``MOBIUS_ACT_DIM``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from hhml.config.agent import AgentConfig
from hhml.config.controls import NUM_CONTROLS
from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError
from hhml.utils.cpp_build import kernels_enabled

__all__ = [
    "COMPONENT_KEYS",
    "MOBIUS_ACT_DIM",
    "MOBIUS_OBS_DIM",
    "MemoryEstimate",
    "available_memory",
    "check_memory",
    "estimate_memory",
]

_LOG = logging.getLogger(__name__)

#: Env id of the Möbius vortex environment (the only one with a simulation).
_MOBIUS_ENV_ID = "hhml/MobiusVortex-v0"
#: Observation size of the Möbius env: 13 measured features + the 23 control values.
MOBIUS_OBS_DIM = 13 + NUM_CONTROLS
#: Action size of the Möbius env: one per control.
MOBIUS_ACT_DIM = NUM_CONTROLS

_F32 = 4  # bytes of float32 (networks, replay, observations)
_F64 = 8  # bytes of float64 (geometry coefficients, vortex tracking)
_GIB = float(1 << 30)


# --- per lattice node of one environment (see docs/memory.md, "Model") ---------------
@dataclass(frozen=True)
class _NodeCounts:
    """Buffers per lattice node that one env step holds at its peak, for one code path.

    ``*_junction`` counts are per node of a junction between neighbouring strips
    (``(strips − 1) · nu · nv`` of them per env); the others per node of the env.
    """

    #: complex field-sized buffers
    field: int
    field_junction: int
    #: float64 and real-dtype geometry buffers (coefficients, areas, coupling weights)
    geometry_f64: int
    geometry_real: int
    geometry_real_junction: int
    #: float64, real-dtype and one-byte measurement buffers
    measure_f64: int
    measure_real: int
    measure_bytes: int
    #: whether the tracker's float64 [K', K'] pair buffers exist
    tracker_pairs: bool
    #: the dt check's 16-element ensemble: complex and float64 buffers per element node
    check_complex: int
    check_f64: int


#: CPU with the C++ kernels (the default there): the fused RK4 step, the noise, the
#: geometry update, the imprints and the measurement work in place or in per-thread
#: scratch. Alive at the peak, per env: ψ, the RK4 kernel's new state, the reset draw
#: of the masked auto-reset and its merge (4 complex per node) and one complex buffer
#: per junction node (the coupling term); five real-dtype buffers per node (four face
#: coefficients and the area) and two per junction node (coupling weights), twice while
#: the geometry update replaces them. The dt check's zero field and two float64 per
#: element node: fitted to the measured peaks (docs/memory.md).
_KERNEL_COUNTS = _NodeCounts(
    field=4,
    field_junction=1,
    geometry_f64=0,
    geometry_real=10,
    geometry_real_junction=4,
    measure_f64=0,
    measure_real=0,
    measure_bytes=0,
    tracker_pairs=False,
    check_complex=1,
    check_f64=2,
)
#: the torch code (CUDA, or a CPU with ``HHML_CPP_KERNELS=0``): ψ, the RK4 stages
#: k₁…k₄, the stage argument, the accumulated update, the noise draw, the reset draw
#: and the new state (10 complex per node); the batched float64 metric, frame and
#: coefficient temporaries of the geometry update (26 float64, fitted to the measured
#: peaks) and four real-dtype cast copies of the face coefficients; the detector's
#: float64 phase, |ψ|², plaquette winding and core depth, |ψ|² and phase in the real
#: dtype and two one-byte masks; the tracker's pair buffers; the dt check's zero field
#: and four float64 face coefficients per element node.
_TORCH_COUNTS = _NodeCounts(
    field=10,
    field_junction=0,
    geometry_f64=26,
    geometry_real=4,
    geometry_real_junction=0,
    measure_f64=4,
    measure_real=2,
    measure_bytes=2,
    tracker_pairs=True,
    check_complex=1,
    check_f64=4,
)
#: float64 ``[K', K']`` scratch of the torch vortex tracker per env (pairwise
#: distances, their minima and the linking masks), ``K' = min(max_vortices, nu·nv / 8)``:
#: it grows with the vortices found, and fields after a few steps carry about one per
#: 8 plaquettes or fewer (fitted to measured peaks, docs/memory.md).
_TRACK_PAIR_BUFFERS = 5
_PLAQUETTES_PER_VORTEX = 8
#: the env checks dt once on the 16 corner geometries of the control box (a 16-element
#: ensemble with a zero field, built before its own one); freed, but what the allocator
#: keeps of it counts towards the peak.
_STABILITY_CHECK_ELEMENTS = 16
#: activations kept per hidden layer and sample in one gradient step of an MLP agent:
#: linear and ReLU outputs of the critics, target critics, target actor, actor and
#: the actor loss's critic pass, plus their gradients.
_ACTIVATIONS_PER_LAYER = 12
#: per sample, time step and LSTM layer: the four gates, cell and hidden state, kept
#: for backpropagation through time, in the actor's and both critics' LSTMs.
_LSTM_ACTIVATIONS = 3 * 10
#: memory a training process gains beyond its tensors: modules imported on first use,
#: the C++ kernels of the simulator, thread pools, allocator slack (measured: the
#: peak-RSS growth of the smallest configuration, see docs/memory.md).
_RUNTIME_OVERHEAD = 96 * (1 << 20)
#: what torch.compile adds to a CPU process the first time it compiles the stack RK4 step
#: (its modules, code generation and caches): the torch code on a CPU
#: (``HHML_CPP_KERNELS=0``) compiles that step once the batch has
#: ``MIN_COMPILED_NODES`` nodes. Measured as the peak-RSS growth of the first RK4 step
#: and as the gap of the per-node model on three shapes (92–107 MiB, docs/memory.md).
_COMPILE_OVERHEAD = 100 * (1 << 20)

#: The config keys that reduce each component, in the order they matter.
COMPONENT_KEYS: dict[str, tuple[str, ...]] = {
    "field_state": ("lattice.nu", "lattice.nv", "lattice.strips", "env.num_envs"),
    "lattice_geometry": ("lattice.nu", "lattice.nv", "lattice.strips", "env.num_envs"),
    "stability_check": ("lattice.nu", "lattice.nv", "lattice.strips"),
    "measurement": ("env.max_vortices", "env.num_envs", "lattice.nu", "lattice.nv"),
    "networks": ("agent.hidden_size", "agent.hidden_layers", "agent.lstm_hidden"),
    "activations": ("agent.batch_size", "agent.hidden_size", "agent.sequence_length"),
    "replay": ("agent.buffer_size",),
    "checkpoint": ("agent.buffer_size", "training.save_replay", "agent.hidden_size"),
    "runtime": (),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of one training process, by component (bytes).

    Attributes
    ----------
    field_state : int
        Complex field-sized buffers of the training and evaluation envs' step (ψ, the
        new state, the reset draw; on the torch path also the RK4 stages and the noise).
    lattice_geometry : int
        Metric and Laplacian coefficients of the ensembles (float64 and cast copies).
    stability_check : int
        The 16-element ensemble the env builds once to check dt over the control box.
    measurement : int
        Observables of the vortex detector and the tracker's pairwise buffers.
    networks : int
        Parameters, target copies, gradients and Adam moments of the agent, and
        parameters, target copies and Adam moments of its evaluation copy.
    activations : int
        Activations of one gradient step (``agent.batch_size`` samples).
    replay : int
        The replay buffer (float32 transitions; int64 episode steps for sequences).
    checkpoint : int
        What writing ``model_last.pt`` copies: the agent's state (networks, Adam
        moments), the training envs' fields and, with ``training.save_replay``, one
        copy of the filled part of the replay buffer.
    runtime : int
        Fixed overhead of a training process beyond its tensors.
    obs_dim, act_dim : int
        The sizes the network and replay terms assume (1 for a gymnasium env id,
        whose spaces are only known once it is built: a lower bound).
    """

    field_state: int
    lattice_geometry: int
    stability_check: int
    measurement: int
    networks: int
    activations: int
    replay: int
    checkpoint: int
    runtime: int
    obs_dim: int
    act_dim: int

    @property
    def components(self) -> dict[str, int]:
        """``{component: bytes}`` in declaration order (the keys of :data:`COMPONENT_KEYS`)."""
        return {name: getattr(self, name) for name in COMPONENT_KEYS}

    @property
    def total(self) -> int:
        """Sum of the components (bytes)."""
        return sum(self.components.values())

    def largest(self, count: int = 3) -> list[tuple[str, int]]:
        """The ``count`` largest non-zero components as ``(name, bytes)``, largest first."""
        ranked = sorted(self.components.items(), key=lambda item: item[1], reverse=True)
        return [(name, size) for name, size in ranked[:count] if size > 0]


# ----------------------------------------------------------------------------- networks


def _mlp_params(in_dim: int, out_dim: int, hidden: int, layers: int) -> int:
    """Parameters of :func:`hhml.ml.rl.networks.mlp` (weights and biases)."""
    return (
        in_dim * hidden
        + hidden
        + (layers - 1) * (hidden * hidden + hidden)
        + hidden * out_dim
        + out_dim
    )


def _lstm_params(in_dim: int, hidden: int, layers: int) -> int:
    """Parameters of ``torch.nn.LSTM`` (two bias vectors per layer)."""
    first = 4 * hidden * (in_dim + hidden) + 8 * hidden
    return first + (layers - 1) * (4 * hidden * (2 * hidden) + 8 * hidden)


def _network_params(agent: AgentConfig, obs: int, act: int) -> tuple[int, int]:
    """``(trained, target)`` parameter counts of one agent."""
    h, n = agent.hidden_size, agent.hidden_layers
    critic = 2 * _mlp_params(obs + act, 1, h, n)
    if agent.algorithm == "td3":
        actor = _mlp_params(obs, act, h, n)
        return actor + critic, actor + critic
    if agent.algorithm == "sac":
        actor = _mlp_params(obs, 2 * act, h, n)
        return actor + critic + 1, critic  # + log α; only the critics have targets
    lstm = _lstm_params(obs, agent.lstm_hidden, agent.lstm_layers)
    actor = lstm + _mlp_params(agent.lstm_hidden + obs, act, h, n)
    critic = 2 * (lstm + _mlp_params(agent.lstm_hidden + obs + act, 1, h, n))
    return actor + critic, actor + critic


def _replay_rows(agent: AgentConfig, num_envs: int) -> int:
    """Transitions the buffer holds (a sequence buffer: whole streams per env)."""
    if agent.algorithm == "recurrent_td3":
        return num_envs * (agent.buffer_size // num_envs)
    return agent.buffer_size


def _replay_row_bytes(agent: AgentConfig, obs: int, act: int) -> int:
    """float32 obs, action, reward, next_obs, terminated (+ int64 episode step)."""
    row = (2 * obs + act + 2) * _F32
    return row + 8 if agent.algorithm == "recurrent_td3" else row


def _activation_bytes(agent: AgentConfig, obs: int, act: int) -> int:
    width = agent.hidden_size * agent.hidden_layers + obs + act
    steps = 1
    lstm = 0
    if agent.algorithm == "recurrent_td3":
        steps = agent.burn_in + agent.sequence_length
        lstm = _LSTM_ACTIVATIONS * agent.lstm_hidden * agent.lstm_layers
    return agent.batch_size * steps * (_ACTIVATIONS_PER_LAYER * width + lstm) * _F32


# ----------------------------------------------------------------------------- public API


def estimate_memory(cfg: HHmLConfig, device: torch.device | None = None) -> MemoryEstimate:
    """Estimate the peak memory of ``hhml-train`` for ``cfg``, before anything is built.

    Counts, per tensor and with its dtype, what one training process holds at its
    peak: the fields, geometry and measurements of ``env.num_envs`` training envs and
    the one evaluation env (Möbius env only), the 16-element ensemble of the env's dt
    check, the agent's and its evaluation copy's networks with target copies,
    gradients and Adam moments, one gradient step's activations, the replay buffer
    and a fixed runtime overhead. The model and its accuracy against measured peaks
    are in ``docs/memory.md``.

    Parameters
    ----------
    cfg
        The whole (validated) config.
    device
        Where the run will compute (None: the CPU). On a CPU the env step runs the C++
        kernels unless ``HHML_CPP_KERNELS=0``, and holds far fewer field-sized buffers
        than the torch code that runs elsewhere; the counts of each path are in
        ``docs/memory.md``.

    Returns
    -------
    MemoryEstimate
        Bytes per component; ``.total`` is the estimate.
    """
    kernels = (device is None or device.type == "cpu") and kernels_enabled()
    lat, agent = cfg.lattice, cfg.agent
    complex_bytes = 16 if cfg.simulation.dtype == "complex128" else 8
    real_bytes = complex_bytes // 2
    field = geometry = check = measure = env_state = 0
    if cfg.env.id == _MOBIUS_ENV_ID:
        obs, act = MOBIUS_OBS_DIM, MOBIUS_ACT_DIM
        nodes = lat.strips * lat.nu * lat.nv  # per environment
        envs = cfg.env.num_envs + 1  # training envs + the evaluation env
        junctions = (lat.strips - 1) * lat.nu * lat.nv
        k = _KERNEL_COUNTS if kernels else _TORCH_COUNTS
        field = envs * (nodes * k.field + junctions * k.field_junction) * complex_bytes
        env_state = cfg.env.num_envs * nodes * complex_bytes  # ψ in the checkpoint
        geometry = envs * (
            nodes * (k.geometry_f64 * _F64 + k.geometry_real * real_bytes)
            + junctions * k.geometry_real_junction * real_bytes
        )
        check_per_node = k.check_complex * complex_bytes + k.check_f64 * _F64
        check = _STABILITY_CHECK_ELEMENTS * nodes * check_per_node
        per_node = k.measure_f64 * _F64 + k.measure_real * real_bytes + k.measure_bytes
        pairs = 0
        if k.tracker_pairs:
            tracked = min(cfg.env.max_vortices, lat.nu * lat.nv // _PLAQUETTES_PER_VORTEX)
            pairs = _TRACK_PAIR_BUFFERS * tracked**2 * _F64
        measure = envs * (nodes * per_node + pairs)
    else:  # a gymnasium env: its spaces are unknown here, assume the smallest
        obs, act = 1, 1
    trained, target = _network_params(agent, obs, act)
    # agent: parameters, gradients, two Adam moments, targets; the evaluation copy
    # loads the agent's state (Adam moments included) but never computes gradients
    networks = (trained * 4 + target + trained * 3 + target) * _F32
    row = _replay_row_bytes(agent, obs, act)
    rows = _replay_rows(agent, cfg.env.num_envs)
    replay = (rows + 1) * row  # + the evaluation copy's one-transition buffer
    # model_last.pt: state_dict() copies parameters, targets and Adam moments, and the
    # filled rows of the replay buffer once (the buffer's own CPU copy)
    checkpoint = (trained * 3 + target) * _F32 + env_state
    if cfg.training.save_replay:
        checkpoint += min(rows, cfg.training.total_steps + cfg.env.num_envs) * row
    return MemoryEstimate(
        field_state=field,
        lattice_geometry=geometry,
        stability_check=check,
        measurement=measure,
        networks=networks,
        activations=_activation_bytes(agent, obs, act),
        replay=replay,
        checkpoint=checkpoint,
        runtime=_RUNTIME_OVERHEAD + _compile_overhead(cfg, device, kernels),
        obs_dim=obs,
        act_dim=act,
    )


def _compile_overhead(cfg: HHmLConfig, device: torch.device | None, kernels: bool) -> int:
    """:data:`_COMPILE_OVERHEAD` where the run compiles the stack RK4 step in this CPU
    process (the torch code on a CPU, a Möbius env batch of at least
    ``MIN_COMPILED_NODES`` nodes), else 0. On CUDA the compiler's memory is host memory,
    not the GPU's the estimate is checked against."""
    on_cpu = device is None or device.type == "cpu"
    if kernels or not on_cpu or cfg.env.id != _MOBIUS_ENV_ID:
        return 0
    from hhml.core.resonance.flat_kernels import MIN_COMPILED_NODES

    lat = cfg.lattice
    nodes = cfg.env.num_envs * lat.strips * lat.nu * lat.nv
    return _COMPILE_OVERHEAD if nodes >= MIN_COMPILED_NODES else 0


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It has no parsable ``MemAvailable`` line.
    """
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            if len(fields) != 3 or fields[2] != "kB":
                raise ValueError(f"{path}: unexpected line {line!r}")
            return int(fields[1]) * 1024
    raise ValueError(f"{path} has no MemAvailable line")


def available_memory(device: torch.device, meminfo: Path = Path("/proc/meminfo")) -> int:
    """Memory that a new allocation on ``device`` can use now (bytes).

    CUDA: the free memory of the device (``torch.cuda.mem_get_info``); CPU:
    ``MemAvailable`` of ``/proc/meminfo`` (free memory plus reclaimable caches).

    Raises
    ------
    OSError
        The amount cannot be determined; the message says why (no
        ``/proc/meminfo``, an unparsable one, or a CUDA query that failed).
    """
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
        except (RuntimeError, AssertionError) as exc:
            raise OSError(f"torch.cuda.mem_get_info({device}) failed: {exc}") from exc
        return int(free)
    if device.type != "cpu":
        raise OSError(f"no way to query free memory on a {device.type!r} device")
    try:
        return _meminfo_available(meminfo)
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read MemAvailable from {meminfo}: {exc}") from exc


def _gib(size: float) -> str:
    gib = size / _GIB
    return f"{gib:,.0f} GiB" if gib >= 100 else f"{gib:.3g} GiB"


def check_memory(
    cfg: HHmLConfig,
    device: torch.device,
    *,
    processes: int = 1,
    meminfo: Path = Path("/proc/meminfo"),
) -> MemoryEstimate:
    """Refuse a config whose estimated peak memory exceeds what ``device`` has free.

    Parameters
    ----------
    cfg
        The whole config.
    device
        The device the run will use (``training.device`` resolved).
    processes
        Processes that share this memory (the ranks of a CPU ``--nproc`` run).
    meminfo
        Where the CPU's ``MemAvailable`` is read.

    Returns
    -------
    MemoryEstimate
        The estimate of one process (also when the check had to be skipped).

    Raises
    ------
    ConfigError
        ``processes`` × the estimate exceeds the available memory; the message gives
        both (GiB), the largest components and the config keys that reduce them.
    """
    estimate = estimate_memory(cfg, device)
    try:
        available = available_memory(device, meminfo)
    except OSError as exc:
        _LOG.warning("memory pre-flight skipped: %s", exc)
        return estimate
    needed = estimate.total * processes
    if needed <= available:
        return estimate
    parts = ", ".join(f"{name} {_gib(size)}" for name, size in estimate.largest())
    keys: list[str] = []
    for name, _size in estimate.largest(2):
        keys += [key for key in COMPONENT_KEYS[name] if key not in keys]
    if cfg.agent.algorithm != "recurrent_td3":
        keys = [key for key in keys if key not in ("agent.lstm_hidden", "agent.sequence_length")]
    per_rank = f" ({processes} processes × {_gib(estimate.total)})" if processes > 1 else ""
    raise ConfigError(
        f"this config needs about {_gib(needed)} of memory{per_rank} but {device} has "
        f"{_gib(available)} available; largest parts: {parts}; reduce "
        f"{', '.join(keys)} (memory model: docs/memory.md)"
    )
