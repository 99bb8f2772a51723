"""Hyperparameter search on Optuna: search-space files, trials as run directories, workers.

A search-space file (``configs/search/*.yaml``) names the hyperparameters to tune,
each a dotted config key with a distribution, and the study's settings::

    study:
      name: td3-quickstart               # default study name (--study overrides)
      direction: maximize                # the metric is an evaluation return
      metric: final_eval.return_mean     # metrics.json key the trial returns
      sampler: {type: tpe, seed: 0, n_startup_trials: 4}
      pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 1000}
    overrides: [training.baselines=random]   # applied to every trial (optional)
    params:
      agent.actor_learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      agent.hidden_size: {type: int, low: 32, high: 128, step: 32}
      agent.batch_size: {type: categorical, choices: [64, 128, 256]}

Every trial is an ordinary run directory ``<run_root>/<study>/trial-<NNNN>`` written by
a :class:`~hhml.ml.training.Trainer` whose config is the base config, the overrides and
the sampled values. The trainer's evaluations (every ``training.eval_every`` env steps)
are reported to Optuna; a pruned trial stops there, Optuna records it ``PRUNED`` and its
``metrics.json`` gets status ``pruned`` with the reason. The study lives in an RDB
storage (default ``sqlite:///<run_root>/<study>/study.db``); several workers on one
storage and study name share the work, and a heartbeat marks the running trial of a
killed worker ``FAIL`` so that a rerun completes the study.

Public names: ``Distribution``, ``PrunerSettings``, ``SamplerSettings``,
``StudySettings``, ``SearchSpace``, ``StudyOutcome``, ``TrialTrainer``,
``MissingDependencyError``, ``TUNABLE_SECTIONS``, ``TUNABLE_KEYS``, ``METRICS``,
``load_search_space``, ``tunable_keys``, ``check_against_config``,
``default_storage_url``, ``redact_url``, ``require_optuna``, ``override_text``,
``run_study``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hhml.config.loader import config_to_dict, load_config
from hhml.config.overrides import parse_override
from hhml.config.schema import HHmLConfig
from hhml.config.specs import FieldSpec, field_specs
from hhml.config.yaml_io import load_yaml_text
from hhml.errors import ConfigError, HHmLError, NumericalInstabilityError
from hhml.ml.training.evaluation import EvalResult
from hhml.ml.training.metrics import MetricsWriter
from hhml.ml.training.trainer import Trainer
from hhml.utils.atomic_io import atomic_write_text

if TYPE_CHECKING:
    import optuna

__all__ = [
    "METRICS",
    "TUNABLE_KEYS",
    "TUNABLE_SECTIONS",
    "Distribution",
    "MissingDependencyError",
    "PrunerSettings",
    "SamplerSettings",
    "SearchSpace",
    "StudyOutcome",
    "StudySettings",
    "TrialTrainer",
    "check_against_config",
    "default_storage_url",
    "load_search_space",
    "override_text",
    "redact_url",
    "require_optuna",
    "run_study",
    "tunable_keys",
]

#: Sections whose every key may be tuned.
TUNABLE_SECTIONS = ("agent",)
#: Further keys that may be tuned (batched envs change the data an agent collects).
TUNABLE_KEYS = ("env.num_envs",)
#: ``metrics.json`` values a trial may return (both are maximised).
METRICS = ("final_eval.return_mean", "best_eval.return_mean")
_TOP_KEYS = ("study", "overrides", "params")
_STUDY_KEYS = ("name", "direction", "metric", "sampler", "pruner")
_SAMPLERS = {"tpe": ("type", "seed", "n_startup_trials"), "random": ("type", "seed")}
_PRUNERS = {
    "none": ("type",),
    "median": ("type", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": (
        "type",
        "percentile",
        "n_startup_trials",
        "n_warmup_steps",
        "interval_steps",
        "n_min_trials",
    ),
    "threshold": ("type", "lower", "upper", "n_warmup_steps", "interval_steps"),
}
_DISTRIBUTIONS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
#: Keys the optimiser sets itself in every trial.
_RESERVED = ("training.run_name", "training.run_root")
#: Keys that may differ between the workers of one study (machine-local settings).
_LOCAL_KEYS = (
    "training.device",
    "training.run_root",
    "training.run_name",
    "training.torch_threads",
    "training.progress_bar",
    "training.tensorboard",
)
_INSTALL_HINT = 'pip install "hhml[optimize]"'


class MissingDependencyError(HHmLError, ImportError):
    """An optional dependency (Optuna) is not installed."""


def require_optuna() -> Any:
    """Import and return the ``optuna`` module.

    Raises
    ------
    MissingDependencyError
        Optuna is not installed (the message says how to install it).
    """
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependencyError(
            f"hyperparameter search needs Optuna, which is not installed ({exc}); "
            f"install it with: {_INSTALL_HINT}"
        ) from None
    return optuna


# ----------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class Distribution:
    """The distribution of one tuned config key.

    Attributes
    ----------
    key : str
        Dotted config key (``"agent.actor_learning_rate"``); also Optuna's parameter name.
    kind : {"float", "int", "categorical"}
        Distribution type.
    low, high : float or int or None
        Inclusive bounds (``float`` and ``int``), in the key's units.
    step : float or int or None
        Grid spacing (``int``: default 1; ``float``: None means continuous).
    log : bool
        Sample uniformly in log space (``low > 0``; no ``step`` then).
    choices : tuple or None
        The values of a ``categorical`` distribution (normalised to the key's type).
    line : int or None
        Line of the key in the search-space file.
    """

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain form (stored in the study to check that workers agree)."""
        if self.kind == "categorical":
            return {"type": self.kind, "choices": list(self.choices or ())}
        return {
            "type": self.kind,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "log": self.log,
        }

    def extremes(self) -> list[Any]:
        """The values that bound the search: ``low`` and ``high``, or every choice."""
        if self.kind == "categorical":
            return list(self.choices or ())
        return [self.low, self.high]

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this key's value for ``trial``."""
        if self.kind == "float":
            assert self.low is not None and self.high is not None
            step = None if self.step is None else float(self.step)
            return trial.suggest_float(
                self.key, float(self.low), float(self.high), step=step, log=self.log
            )
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_categorical(self.key, list(self.choices or ()))


@dataclass(frozen=True)
class SamplerSettings:
    """``study.sampler``: ``type`` (``tpe`` or ``random``), ``seed``, TPE's
    ``n_startup_trials`` (random trials before TPE models the results)."""

    type: str = "tpe"
    seed: int | None = None
    n_startup_trials: int = 10


@dataclass(frozen=True)
class PrunerSettings:
    """``study.pruner``: ``type`` (``none``, ``median``, ``percentile``, ``threshold``) and
    its options; ``n_warmup_steps`` and ``interval_steps`` count env steps (the step of
    each evaluation)."""

    type: str = "median"
    n_startup_trials: int = 2
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1
    percentile: float | None = None
    lower: float | None = None
    upper: float | None = None

    def build(self) -> Any:
        """The Optuna pruner."""
        optuna = require_optuna()
        pruners = optuna.pruners
        if self.type == "none":
            return pruners.NopPruner()
        if self.type == "threshold":
            return pruners.ThresholdPruner(
                lower=self.lower,
                upper=self.upper,
                n_warmup_steps=self.n_warmup_steps,
                interval_steps=self.interval_steps,
            )
        common = {
            "n_startup_trials": self.n_startup_trials,
            "n_warmup_steps": self.n_warmup_steps,
            "interval_steps": self.interval_steps,
            "n_min_trials": self.n_min_trials,
        }
        if self.type == "percentile":
            return pruners.PercentilePruner(self.percentile, **common)
        return pruners.MedianPruner(**common)


@dataclass(frozen=True)
class StudySettings:
    """The ``study`` section: name, direction (``maximize``), metric, sampler, pruner."""

    name: str
    direction: str = "maximize"
    metric: str = "final_eval.return_mean"
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)


@dataclass(frozen=True)
class SearchSpace:
    """A parsed and validated search-space file.

    Attributes
    ----------
    path : Path
        The file.
    study : StudySettings
        Study settings.
    overrides : tuple of str
        Overrides applied to every trial, before the command line's.
    params : dict of str to Distribution
        The tuned keys, in file order.
    """

    path: Path
    study: StudySettings
    overrides: tuple[str, ...]
    params: dict[str, Distribution]

    def fingerprint(self) -> dict[str, Any]:
        """What every worker of one study must agree on (params and metric)."""
        return {
            "metric": self.study.metric,
            "direction": self.study.direction,
            "params": {k: d.to_dict() for k, d in self.params.items()},
        }


def tunable_keys() -> list[str]:
    """Every dotted config key a search space may tune, in schema order."""
    keys: list[str] = []
    for section, section_type in HHmLConfig.section_types().items():
        for name in field_specs(section_type):
            dotted = f"{section}.{name}"
            if section in TUNABLE_SECTIONS or dotted in TUNABLE_KEYS:
                keys.append(dotted)
    return keys


class _Reader:
    """Error messages that name the file and the line of a key."""

    def __init__(self, path: Path, lines: Mapping[str, int]) -> None:
        self.path = path
        self.lines = lines

    def line(self, *keys: str) -> int | None:
        for key in keys:
            if key in self.lines:
                return self.lines[key]
        return None

    def error(self, message: str, *keys: str) -> ConfigError:
        line = self.line(*keys)
        where = f"search space {self.path}" + (f", line {line}" if line is not None else "")
        return ConfigError(f"{where}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_keys(
    reader: _Reader, data: Mapping[str, Any], valid: Sequence[str], what: str, at: str
) -> None:
    unknown = [str(k) for k in data if str(k) not in valid]
    if unknown:
        key = f"{at}.{unknown[0]}" if at else unknown[0]
        raise reader.error(
            f"unknown key {unknown[0]!r} in {what}; valid keys: {', '.join(valid)}", key, at
        )


def _int_option(
    reader: _Reader, data: Mapping[str, Any], key: str, at: str, default: int, low: int
) -> int:
    value = data.get(key, default)
    if not _is_int(value) or value < low:
        raise reader.error(f"{at}.{key} = {value!r} must be an integer >= {low}", f"{at}.{key}", at)
    return int(value)


def _float_option(reader: _Reader, data: Mapping[str, Any], key: str, at: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not _is_real(value) or not math.isfinite(float(value)):
        raise reader.error(f"{at}.{key} = {value!r} must be a finite number", f"{at}.{key}", at)
    return float(value)


def _kind_of(reader: _Reader, data: Mapping[str, Any], at: str, kinds: Sequence[str]) -> str:
    kind = data.get("type")
    if kind not in kinds:
        raise reader.error(
            f"{at}.type = {kind!r} is not valid; choose one of {', '.join(kinds)}",
            f"{at}.type",
            at,
        )
    return str(kind)


def _parse_sampler(reader: _Reader, data: Any) -> SamplerSettings:
    at = "study.sampler"
    if data is None:
        return SamplerSettings()
    if not isinstance(data, Mapping):
        raise reader.error(f"{at} must be a mapping such as {{type: tpe, seed: 0}}", at)
    kind = _kind_of(reader, data, at, list(_SAMPLERS))
    _check_keys(reader, data, _SAMPLERS[kind], f"a {kind} sampler", at)
    seed = data.get("seed")
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise reader.error(f"{at}.seed = {seed!r} must be an integer >= 0", f"{at}.seed", at)
    startup = _int_option(reader, data, "n_startup_trials", at, 10, 0)
    return SamplerSettings(type=kind, seed=seed, n_startup_trials=startup)


def _parse_pruner(reader: _Reader, data: Any) -> PrunerSettings:
    at = "study.pruner"
    if data is None:
        return PrunerSettings()
    if not isinstance(data, Mapping):
        raise reader.error(f"{at} must be a mapping such as {{type: median}}", at)
    kind = _kind_of(reader, data, at, list(_PRUNERS))
    _check_keys(reader, data, _PRUNERS[kind], f"a {kind} pruner", at)
    percentile = _float_option(reader, data, "percentile", at)
    if kind == "percentile" and (percentile is None or not 0 <= percentile <= 100):
        raise reader.error(
            f"{at}.percentile = {percentile!r}: a percentile pruner needs a number in "
            "[0, 100] (trials below that percentile of the others at a step are pruned)",
            f"{at}.percentile",
            at,
        )
    lower = _float_option(reader, data, "lower", at)
    upper = _float_option(reader, data, "upper", at)
    if kind == "threshold":
        if lower is None and upper is None:
            raise reader.error(f"a threshold pruner needs 'lower' and/or 'upper' in {at}", at)
        if lower is not None and upper is not None and lower > upper:
            raise reader.error(
                f"{at}: lower = {lower!r} must not exceed upper = {upper!r}", f"{at}.lower", at
            )
    return PrunerSettings(
        type=kind,
        n_startup_trials=_int_option(reader, data, "n_startup_trials", at, 2, 0),
        n_warmup_steps=_int_option(reader, data, "n_warmup_steps", at, 0, 0),
        interval_steps=_int_option(reader, data, "interval_steps", at, 1, 1),
        n_min_trials=_int_option(reader, data, "n_min_trials", at, 1, 1),
        percentile=percentile,
        lower=lower,
        upper=upper,
    )


def _parse_study(reader: _Reader, data: Any) -> StudySettings:
    default_name = re.sub(r"[^A-Za-z0-9._-]+", "-", reader.path.stem).strip("-") or "study"
    if data is None:
        return StudySettings(name=default_name)
    if not isinstance(data, Mapping):
        raise reader.error("'study' must be a mapping (name, direction, metric, ...)", "study")
    _check_keys(reader, data, _STUDY_KEYS, "'study'", "study")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise reader.error(
            f"study.name = {name!r} must be a directory name (letters, digits, '.', '_', '-')",
            "study.name",
        )
    direction = data.get("direction", "maximize")
    if direction != "maximize":
        raise reader.error(
            f"study.direction = {direction!r} is not valid; the metric is an evaluation "
            "return, so the only direction is 'maximize'",
            "study.direction",
        )
    metric = data.get("metric", METRICS[0])
    if metric not in METRICS:
        raise reader.error(
            f"study.metric = {metric!r} is not valid; choose one of {', '.join(METRICS)}",
            "study.metric",
        )
    return StudySettings(
        name=name,
        direction=direction,
        metric=str(metric),
        sampler=_parse_sampler(reader, data.get("sampler")),
        pruner=_parse_pruner(reader, data.get("pruner")),
    )


def _field_spec(reader: _Reader, key: str) -> FieldSpec:
    """The schema entry of a tunable key, or a ConfigError saying what is valid."""
    at = f"params.{key}"
    sections = HHmLConfig.section_types()
    section, _, name = key.partition(".")
    specs = field_specs(sections[section]) if section in sections else {}
    valid = tunable_keys()
    if name not in specs:
        message = f"unknown config key {key!r}"
        # compare the last component: the shared "agent." would make every key look close
        leaves = {k.rpartition(".")[2]: k for k in valid}
        close = difflib.get_close_matches(key.rpartition(".")[2], list(leaves), n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {leaves[close[0]]!r}?"
        else:
            message += f"; tunable keys: {', '.join(valid)}"
        raise reader.error(message, at)
    if key not in valid:
        raise reader.error(
            f"{key!r} is not tunable: a search may tune the agent's hyperparameters "
            f"({', '.join(f'{s}.*' for s in TUNABLE_SECTIONS)}) and "
            f"{', '.join(TUNABLE_KEYS)}; the other keys define the task, the training "
            "budget or the evaluation protocol (set them with overrides instead)",
            at,
        )
    return specs[name]


def _bound(reader: _Reader, fs: FieldSpec, key: str, which: str, value: Any, kind: str) -> Any:
    at = f"params.{key}"
    if value is None:
        raise reader.error(f"{key}: a {kind} distribution needs '{which}'", at)
    ok = _is_int(value) if kind == "int" else _is_real(value) and math.isfinite(float(value))
    if not ok:
        expected = "an integer" if kind == "int" else "a finite number"
        raise reader.error(
            f"{key}: {which} = {value!r} has the wrong type ({type(value).__name__}); "
            f"expected {expected}",
            f"{at}.{which}",
            at,
        )
    try:
        return fs.check(value, key)
    except ConfigError as exc:
        raise reader.error(f"{which}: {exc}", f"{at}.{which}", at) from None


def _parse_distribution(reader: _Reader, key: str, data: Any) -> Distribution:
    at = f"params.{key}"
    fs = _field_spec(reader, key)
    if not isinstance(data, Mapping):
        raise reader.error(
            f"{key} needs a distribution such as {{type: float, low: 1.0e-4, high: 1.0e-2, "
            f"log: true}}, {{type: int, low: 1, high: 8}} or {{type: categorical, choices: "
            f"[...]}}; got {data!r}",
            at,
        )
    kind = _kind_of(reader, data, at, list(_DISTRIBUTIONS))
    _check_keys(reader, data, _DISTRIBUTIONS[kind], f"a {kind} distribution", at)
    line = reader.line(at)
    if kind == "categorical":
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise reader.error(f"{key}: 'choices' must be a non-empty list", f"{at}.choices", at)
        normalised = []
        for value in choices:
            if isinstance(value, (list, dict)) or value is None:
                raise reader.error(
                    f"{key}: choice {value!r} has the wrong type; expected {fs.allowed()}",
                    f"{at}.choices",
                    at,
                )
            try:
                normalised.append(fs.check(value, key))
            except ConfigError as exc:
                raise reader.error(str(exc), f"{at}.choices", at) from None
        if len(set(normalised)) != len(normalised):
            raise reader.error(f"{key}: 'choices' {choices!r} repeat a value", f"{at}.choices", at)
        return Distribution(key, kind, choices=tuple(normalised), line=line)
    field_kind = "int" if fs.kind is int else "float" if fs.kind is float else None
    if field_kind != kind:
        expected = (
            f"'type: {field_kind}' or 'type: categorical'"
            if field_kind is not None
            else "'type: categorical'"
        )
        raise reader.error(
            f"{key} is {fs.allowed()}; a {kind} distribution has the wrong type for it "
            f"(use {expected})",
            f"{at}.type",
            at,
        )
    low = _bound(reader, fs, key, "low", data.get("low"), kind)
    high = _bound(reader, fs, key, "high", data.get("high"), kind)
    if not low < high:
        what = "empty" if low == high else "inverted"
        raise reader.error(
            f"{key}: the range [{low!r}, {high!r}] is {what}; give low < high "
            f"(the key allows {fs.allowed()}; fix a single value with an override instead)",
            f"{at}.low",
            at,
        )
    log = data.get("log", False)
    if not isinstance(log, bool):
        raise reader.error(f"{key}: log = {log!r} must be true or false", f"{at}.log", at)
    step = data.get("step")
    if step is not None:
        ok = _is_int(step) if kind == "int" else _is_real(step)
        if not ok or step <= 0:
            raise reader.error(
                f"{key}: step = {step!r} must be a positive "
                + ("integer" if kind == "int" else "number"),
                f"{at}.step",
                at,
            )
        if log and not (kind == "int" and step == 1):
            raise reader.error(f"{key}: 'step' and 'log: true' exclude each other", f"{at}.step")
        span = (high - low) / step
        if abs(span - round(span)) > 1e-9 * max(1.0, abs(span)):
            raise reader.error(
                f"{key}: high - low = {high - low!r} is not a multiple of step = {step!r} "
                f"(e.g. high = {low + math.floor(span) * step!r})",
                f"{at}.step",
                at,
            )
    if log and low <= 0:
        raise reader.error(f"{key}: 'log: true' needs low > 0, got low = {low!r}", f"{at}.low", at)
    if kind == "int" and step is None:
        step = 1
    return Distribution(key, kind, low=low, high=high, step=step, log=log, line=line)


def load_search_space(path: str | Path) -> SearchSpace:
    """Read a search-space file and validate it against the config schema.

    Parameters
    ----------
    path
        The YAML file (``configs/search/*.yaml``).

    Returns
    -------
    SearchSpace
        The parsed file.

    Raises
    ------
    ConfigError
        Naming the file, the line and what is valid: a missing file, an unknown or
        untunable key, a distribution of the wrong type for the key, an empty or
        inverted range, bounds outside the key's valid range, unknown study settings.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"search space {file}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"search space {file}: cannot read it: {exc}") from None
    data, lines = load_yaml_text(text, f"search space {file}")
    reader = _Reader(file, lines)
    if not isinstance(data, Mapping):
        raise reader.error(f"must be a mapping with keys {', '.join(_TOP_KEYS)}")
    _check_keys(reader, data, _TOP_KEYS, "the file", "")
    study = _parse_study(reader, data.get("study"))
    overrides = data.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise reader.error("'overrides' must be a list of 'section.key=value' strings", "overrides")
    params = data.get("params")
    if not isinstance(params, Mapping) or not params:
        raise reader.error(
            "'params' must map tunable config keys (e.g. agent.actor_learning_rate) to "
            "distributions",
            "params",
        )
    parsed = {str(k): _parse_distribution(reader, str(k), v) for k, v in params.items()}
    for override in overrides:
        name = _override_key(override)
        if name in parsed or name in _RESERVED:
            raise reader.error(
                f"override {override!r} sets a key the study "
                + ("tunes" if name in parsed else "sets itself"),
                "overrides",
            )
    return SearchSpace(file, study, tuple(overrides), parsed)


# ----------------------------------------------------------------------------- configs


def _override_key(override: str) -> str:
    """The key an override names, without its ``+``/``++``/``~`` prefix."""
    return parse_override(override).name


def override_text(key: str, value: Any) -> str:
    """The ``section.key=value`` override that sets ``key`` to ``value`` exactly."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return f"{key}={text}"


def check_against_config(
    space: SearchSpace, config: str | Path | None, overrides: Sequence[str] = ()
) -> HHmLConfig:
    """Check that the base config holds with each bound (or choice) of every tuned key.

    Parameters
    ----------
    space
        From :func:`load_search_space`.
    config, overrides
        The base config file (None: schema defaults) and the command-line overrides.

    Returns
    -------
    HHmLConfig
        The base config with the file's and the command line's overrides.

    Raises
    ------
    ConfigError
        The base config is invalid, an override sets a tuned key, or a bound of a key
        breaks a rule between keys of the base config (naming the file and line).
    """
    for override in overrides:
        name = _override_key(override)
        if name in space.params:
            raise ConfigError(
                f"override {override!r} sets {name}, which {space.path} tunes; remove one"
            )
        if name in _RESERVED:
            raise ConfigError(
                f"override {override!r}: the study sets {' and '.join(_RESERVED)} itself "
                "(use --run-root)"
            )
    base_overrides = [*space.overrides, *overrides]
    base = load_config(config, base_overrides)
    reader = _Reader(space.path, {f"params.{k}": d.line for k, d in space.params.items() if d.line})
    for key, dist in space.params.items():
        for value in dist.extremes():
            try:
                load_config(config, [*base_overrides, override_text(key, value)])
            except ConfigError as exc:
                raise reader.error(
                    f"{key} = {value!r} does not fit the base config: {exc}", f"params.{key}"
                ) from None
    return base


def default_storage_url(study_dir: Path) -> str:
    """``sqlite:///<study_dir>/study.db`` (absolute path)."""
    return f"sqlite:///{(study_dir / 'study.db').resolve()}"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and files)."""
    return re.sub(r"(://[^:/@]*:)[^/]*@", r"\1***@", url)


# ----------------------------------------------------------------------------- trials


class TrialTrainer(Trainer):
    """A :class:`~hhml.ml.training.Trainer` that reports its evaluations to an Optuna trial.

    Every evaluation's mean return is reported at its env step; an evaluation before the
    last step whose trial Optuna decides to prune raises ``optuna.TrialPruned``, which
    ends :meth:`train`. The run's ``metrics.json`` then has status ``pruned`` and the
    reason, instead of ``failed``. Set :attr:`optuna_trial` after :meth:`create`.
    """

    optuna_trial: optuna.Trial | None = None

    def _do_eval(self, writers: Sequence[MetricsWriter]) -> EvalResult:
        result = super()._do_eval(writers)
        trial = self.optuna_trial
        if trial is None:
            return result
        trial.report(result.return_mean, result.step)
        if result.step < self.cfg.training.total_steps and trial.should_prune():
            optuna = require_optuna()
            raise optuna.TrialPruned(
                f"pruned by the study's pruner at step {result.step}: evaluation return "
                f"{result.return_mean:.6g}"
            )
        return result

    def _record_failure(self, exc: Exception) -> None:
        optuna = require_optuna()
        if isinstance(exc, optuna.TrialPruned) and self.dist.is_main:
            self._write_summary("pruned", reason=str(exc))
            return
        super()._record_failure(exc)


@dataclass
class StudyOutcome:
    """What a worker leaves behind.

    Attributes
    ----------
    study_name : str
        The study.
    storage : str
        Its storage URL (password redacted).
    study_dir : Path
        ``<run_root>/<study>``: the trial directories and the summary files.
    ran : list of int
        Numbers of the trials this worker ran.
    counts : dict of str to int
        Trials of the study per state (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``).
    best : dict or None
        The best completed trial: ``number``, ``value``, ``params``, ``run_dir``.
    """

    study_name: str
    storage: str
    study_dir: Path
    ran: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None


_FINISHED = ("COMPLETE", "PRUNED")
_OPEN_ATTEMPTS = 5
#: Why a FAIL trial without a recorded reason failed: every other FAIL records one, but a
#: finished trial cannot take attributes, so a heartbeat-stale trial is recognised thus.
_STALE_REASON = "its worker stopped sending heartbeats (killed?); marked FAIL by another"


class _Heartbeat:
    """Records a trial's heartbeat in the storage every ``interval`` seconds."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hhml-heartbeat")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # a missed beat only risks a stale mark
                self._storage.record_heartbeat(self._trial_id)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._storage.record_heartbeat(self._trial_id)  # a trial without one is never stale
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()


def _summary_value(summary: Mapping[str, Any], metric: str) -> float | None:
    section, _, key = metric.partition(".")
    entry = summary.get(section)
    if not isinstance(entry, Mapping) or entry.get(key) is None:
        return None
    value = float(entry[key])
    return value if math.isfinite(value) else None


def _write_trial_file(run_dir: Path, record: Mapping[str, Any]) -> None:
    if run_dir.is_dir():
        atomic_write_text(run_dir / "trial.json", json.dumps(record, indent=2) + "\n")


def _trial_record(
    study: Any, trial: Any, state: str, value: float | None, reason: str | None
) -> dict[str, Any]:
    """What ``trial.json`` in a trial's run directory holds."""
    return {
        "study": study.study_name,
        "number": trial.number,
        "state": state,
        "value": value,
        "reason": reason,
        "params": dict(trial.params),
        "overrides": trial.user_attrs.get("overrides"),
        "worker": trial.user_attrs.get("worker"),
    }


def _state_counts(study: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _best(study: Any) -> dict[str, Any] | None:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    top = max(complete, key=lambda t: (t.value, -t.number))
    return {
        "number": top.number,
        "value": top.value,
        "params": dict(top.params),
        "run_dir": top.user_attrs.get("run_dir"),
    }


def _write_study_summary(study: Any, outcome: StudyOutcome, metric: str) -> None:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": dict(t.params),
                "run_dir": t.user_attrs.get("run_dir"),
                "reason": t.user_attrs.get(
                    "reason", _STALE_REASON if t.state.name == "FAIL" else None
                ),
            }
        )
    document = {
        "study": outcome.study_name,
        "storage": outcome.storage,
        "metric": metric,
        "counts": outcome.counts,
        "best": outcome.best,
        "trials": rows,
    }
    outcome.study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        outcome.study_dir / "study_summary.json", json.dumps(document, indent=2) + "\n"
    )
    keys = sorted({k for r in rows for k in r["params"]})
    lines = [
        f"# Study {outcome.study_name}",
        "",
        f"Metric: `{metric}` (maximised); states: "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items())),
        "",
        "| trial | state | value | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.6g}"
        cells = [str(r["params"].get(k, "-")) for k in keys]
        lines.append(f"| {r['number']} | {r['state']} | {value} | " + " | ".join(cells) + " |")
    atomic_write_text(outcome.study_dir / "study_summary.md", "\n".join(lines) + "\n")


def _make_sampler(settings: SamplerSettings, offset: int) -> Any:
    """The Optuna sampler, seeded ``seed + offset`` (unseeded without a seed)."""
    optuna = require_optuna()
    seed = None if settings.seed is None else settings.seed + offset
    if settings.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.n_startup_trials)


def _open_study(
    space: SearchSpace,
    base: HHmLConfig,
    storage_url: str,
    study_name: str,
    heartbeat_s: int,
) -> tuple[Any, Any]:
    """Create or load the study; check that it was created for this search and config."""
    optuna = require_optuna()
    engine_kwargs: dict[str, Any] = {}
    if storage_url.startswith("sqlite"):
        # Several processes write one SQLite file: wait for its lock rather than fail.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    import sqlalchemy.exc

    for attempt in range(_OPEN_ATTEMPTS):
        try:
            with _quiet_optuna(optuna):
                storage = optuna.storages.RDBStorage(
                    storage_url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=2 * heartbeat_s,
                )
            break
        except Exception as exc:  # sqlalchemy/driver errors name the problem
            # Workers that start together race to create the tables of a new database
            # (a unique-constraint error, "table ... already exists", SQLite's lock):
            # the loser tries again and finds the tables made.
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or (
                isinstance(exc, sqlalchemy.exc.DBAPIError)
                and any(text in str(exc) for text in ("already exists", "locked"))
            )
            if not racing or attempt == _OPEN_ATTEMPTS - 1:
                raise ConfigError(
                    f"--storage {redact_url(storage_url)}: cannot open it: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            time.sleep(0.5 * (attempt + 1))
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=_make_sampler(space.study.sampler, 0),
        pruner=space.study.pruner.build(),
        direction=space.study.direction,
        load_if_exists=True,
    )
    config = config_to_dict(base)
    for dotted in _LOCAL_KEYS:
        section, _, key = dotted.partition(".")
        config[section].pop(key, None)
    fingerprint = {**space.fingerprint(), "config": config}
    stored = study.user_attrs.get("hhml")
    if stored is None:
        study.set_user_attr("hhml", fingerprint)
    elif stored != fingerprint:
        differ = sorted(k for k in fingerprint if stored.get(k) != fingerprint[k])
        detail = ""
        if "config" in differ:
            keys = [
                f"{s}.{k}"
                for s, values in fingerprint["config"].items()
                for k, v in values.items()
                if stored.get("config", {}).get(s, {}).get(k) != v
            ]
            detail = f" (config keys: {', '.join(keys[:8])})"
        raise ConfigError(
            f"study {study_name!r} in {redact_url(storage_url)} was created with a different "
            f"{' and '.join(differ)}{detail}; use the same search space and config, or "
            "another --study name"
        )
    return study, storage


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """Silence Optuna's notes on the heartbeat: it is experimental (since 2.9, unchanged
    since), and meant for ``Study.optimize`` (this module runs its own heartbeat thread)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        yield


def _trial_id(rdb: Any, study: Any, number: int) -> int:
    """The storage's id of trial ``number`` of ``study``."""
    study_id = rdb.get_study_id_from_name(study.study_name)
    return int(rdb.get_trial_id_from_study_id_trial_number(study_id, number))


def _fail_stale(optuna: Any, study: Any, say: Callable[[str], None]) -> None:
    """Mark running trials whose heartbeat stopped FAIL, and say so in their run dirs."""
    running = {t.number for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"}
    if not running:
        return
    with _quiet_optuna(optuna):
        optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False):
        if t.number in running and t.state.name == "FAIL":
            reason = _STALE_REASON
            say(f"trial {t.number}: FAIL ({reason})")
            run_dir = t.user_attrs.get("run_dir")
            if run_dir:
                _write_trial_file(Path(run_dir), _trial_record(study, t, "FAIL", None, reason))


def _run_trial(
    study: Any,
    trial: Any,
    space: SearchSpace,
    config: str | Path | None,
    overrides: Sequence[str],
    study_dir: Path,
    say: Callable[[str], None],
) -> tuple[str, float | None, str | None, str]:
    """Run one trial; its state name, value, reason and the Trainer's status."""
    optuna = require_optuna()
    sampled = {key: dist.suggest(trial) for key, dist in space.params.items()}
    name = f"trial-{trial.number:04d}"
    run_dir = study_dir / name
    trial_overrides = [
        *space.overrides,
        *overrides,
        *(override_text(k, v) for k, v in sampled.items()),
        f"training.run_root={study_dir}",
        f"training.run_name={name}",
    ]
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("overrides", trial_overrides)
    say(f"trial {trial.number}: " + ", ".join(override_text(k, v) for k, v in sampled.items()))
    cfg = load_config(config, trial_overrides)
    trainer = TrialTrainer.create(cfg, run_dir=run_dir)
    assert isinstance(trainer, TrialTrainer)
    trainer.optuna_trial = trial
    try:
        result = trainer.train()
    except optuna.TrialPruned as exc:
        return "PRUNED", None, str(exc), "pruned"
    finally:
        trainer.close()
    if result.status != "completed":
        return "FAIL", None, f"training {result.status}", result.status
    value = _summary_value(result.summary, space.study.metric)
    if value is None:
        return "FAIL", None, f"metrics.json has no finite {space.study.metric}", "completed"
    return "COMPLETE", value, None, "completed"


def run_study(
    space: SearchSpace,
    config: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    run_root: str | Path | None = None,
    heartbeat_s: int = 60,
    max_failures: int = 10,
    poll_s: float | None = None,
    announce: Callable[[str], None] | None = None,
) -> StudyOutcome:
    """Run trials of a study until it holds ``trials`` finished (complete or pruned) ones.

    A worker asks for a new trial only while the finished and running trials are
    fewer than ``trials``; a trial whose number comes after ``trials`` unfinished-or-
    finished earlier ones (two workers asked at once) is given up at once (state FAIL,
    reason ``surplus``) so the study never holds more than ``trials`` finished trials.
    While the others' running trials fill the count, the worker waits and marks trials
    whose heartbeat stopped (a killed worker) FAIL, then runs replacements.

    Parameters
    ----------
    space
        From :func:`load_search_space`.
    config, overrides
        Base config file (None: schema defaults) and command-line overrides.
    trials
        Finished trials the study should hold in total (counted over all workers and runs).
    storage
        RDB URL; default :func:`default_storage_url` of the study directory.
    study_name
        Default: the file's ``study.name``.
    run_root
        Directory of the study directory; default ``training.run_root`` of the base config.
    heartbeat_s
        Heartbeat interval of running trials in seconds; a trial silent for twice this
        is marked FAIL by the next worker that looks.
    max_failures
        Stop (raising :class:`~hhml.errors.HHmLError`) after this many consecutive
        failed trials of this worker.
    poll_s
        Seconds between looks at the study while waiting (default: ``heartbeat_s``).
    announce
        Called with one-line progress messages.

    Returns
    -------
    StudyOutcome
        Counts, the best trial and what this worker ran; ``study_summary.json`` and
        ``.md`` are written in the study directory.

    Raises
    ------
    ConfigError
        Invalid config, overrides, storage, or a study created for another search.
    MissingDependencyError
        Optuna is not installed.
    HHmLError
        ``max_failures`` consecutive trials failed.
    """
    optuna = require_optuna()
    if trials < 1:
        raise ConfigError(f"--trials {trials}: give a positive number of trials")
    if heartbeat_s < 1:
        raise ConfigError(f"--heartbeat {heartbeat_s}: give a whole number of seconds >= 1")
    say = announce or (lambda _line: None)
    base = check_against_config(space, config, overrides)
    name = study_name or space.study.name
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"--study {name!r} must be a directory name (letters, digits, '.', '_', '-')"
        )
    root = Path(run_root if run_root is not None else base.training.run_root)
    study_dir = (root / name).resolve()
    study_dir.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage_url(study_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, rdb = _open_study(space, base, url, name, heartbeat_s)
    outcome = StudyOutcome(name, redact_url(url), study_dir)
    poll = heartbeat_s if poll_s is None else poll_s
    failures = 0
    waiting_said = False
    while True:
        _fail_stale(optuna, study, say)
        present = study.get_trials(deepcopy=False)
        finished = sum(t.state.name in _FINISHED for t in present)
        running = sum(t.state.name == "RUNNING" for t in present)
        if finished >= trials:
            break
        if finished + running >= trials:
            if not waiting_said:
                say(f"waiting: {finished} finished and {running} running trials fill the study")
                waiting_said = True
            time.sleep(poll)
            continue
        waiting_said = False
        with _quiet_optuna(optuna):
            trial = study.ask()
        before = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.number < trial.number and t.state.name in (*_FINISHED, "RUNNING")
        ]
        if len(before) >= trials:  # another worker took the last place first
            trial.set_user_attr("reason", "surplus: another worker took the last place")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        if space.study.sampler.seed is not None:
            # Draw with seed + trial number: reproducible whichever worker runs the trial,
            # and workers that start together do not draw the same points. (Optuna samples
            # when the trial's suggest_* are called, so a sampler set now draws them all.)
            study.sampler = _make_sampler(space.study.sampler, trial.number)
        outcome.ran.append(trial.number)
        run_dir = study_dir / f"trial-{trial.number:04d}"
        state, value, reason, status = "FAIL", None, None, "failed"
        with _Heartbeat(rdb, _trial_id(rdb, study, trial.number), heartbeat_s).running():
            try:
                state, value, reason, status = _run_trial(
                    study, trial, space, config, overrides, study_dir, say
                )
            except (ConfigError, NumericalInstabilityError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except BaseException as exc:
                trial.set_user_attr("reason", f"{type(exc).__name__}: {exc}")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
        if reason is not None:
            trial.set_user_attr("reason", reason)
        if state == "COMPLETE":
            study.tell(trial, value)
        else:
            study.tell(trial, state=getattr(optuna.trial.TrialState, state))
        _write_trial_file(run_dir, _trial_record(study, trial, state, value, reason))
        say(
            f"trial {trial.number}: {state}"
            + (f" {space.study.metric} = {value:.6g}" if value is not None else "")
            + (f" ({reason})" if reason else "")
        )
        if status == "interrupted":
            raise KeyboardInterrupt
        failures = failures + 1 if state == "FAIL" else 0
        if failures >= max_failures:
            outcome.counts = _state_counts(study)
            _write_study_summary(study, outcome, space.study.metric)
            raise HHmLError(
                f"{failures} trials in a row failed (last: {reason}); see "
                f"{study_dir / 'study_summary.md'}"
            )
    outcome.counts = _state_counts(study)
    outcome.best = _best(study)
    _write_study_summary(study, outcome, space.study.metric)
    return outcome
