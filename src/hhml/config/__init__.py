"""Typed configuration: schema, YAML loading with config groups, overrides, dumps.

>>> from hhml.config import load_config
>>> cfg = load_config(None, ["dynamics.damping=0.5", "lattice.topology=cylinder"])
>>> cfg.dynamics.damping, cfg.lattice.topology
(0.5, 'cylinder')

Public names: ``HHmLConfig``, ``FieldParams``, ``LatticeConfig``,
``SimulationConfig``, ``load_config``, ``config_from_dict``, ``config_to_dict``,
``dump_config``, ``save_config``, ``find_config_root``, ``FieldSpec``, ``Section``,
``spec``, ``field_specs``, ``validate_section``.
"""

from __future__ import annotations

from hhml.config.loader import (
    config_from_dict,
    config_to_dict,
    dump_config,
    find_config_root,
    load_config,
    save_config,
)
from hhml.config.schema import FieldParams, HHmLConfig, LatticeConfig, SimulationConfig
from hhml.config.specs import FieldSpec, Section, field_specs, spec, validate_section

__all__ = [
    "FieldParams",
    "FieldSpec",
    "HHmLConfig",
    "LatticeConfig",
    "Section",
    "SimulationConfig",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "field_specs",
    "find_config_root",
    "load_config",
    "save_config",
    "spec",
    "validate_section",
]
