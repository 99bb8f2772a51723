"""Importing the configuration layer does not import torch.

``import hhml.config`` and loading a packaged config are what ``--help``, ``--print-config``
style tools and config-only scripts need; they must stay fast (torch takes ~1-2 s to
import). :mod:`hhml.utils` imports its public names on first use for that reason.

Every check runs in a fresh interpreter (``sys.modules`` of the test process already
holds torch).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

import hhml.utils
from hhml.config.loader import packaged_config_root


def run_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return its stdout lines (asserting exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_config_import_and_packaged_config_load_do_not_import_torch() -> None:
    lines = run_python("""
        import sys
        import hhml, hhml.config
        from hhml.config import load_config
        cfg = load_config("quickstart")
        print(cfg.training.total_steps, cfg.agent.hidden_size)
        print("torch" in sys.modules)
        print(" ".join(sorted(m for m in sys.modules if m.startswith("hhml"))))
        """)
    # the reference: the packaged experiment file itself, read with plain yaml
    quickstart = yaml.safe_load(
        (packaged_config_root() / "experiment" / "quickstart.yaml").read_text()
    )
    expected = f"{quickstart['training']['total_steps']} {quickstart['agent']['hidden_size']}"
    assert lines[0] == expected
    assert lines[1] == "False", f"torch was imported; hhml modules loaded: {lines[2]}"


def test_hhml_utils_alone_does_not_import_torch_and_loads_names_on_use() -> None:
    lines = run_python("""
        import sys
        import hhml.utils
        print("torch" in sys.modules, "hhml.utils.device" in sys.modules)
        from hhml.utils import resolve_device
        import hhml.utils.device
        print(resolve_device is hhml.utils.device.resolve_device)
        """)
    assert lines == ["False False", "True"]


@pytest.mark.parametrize("name", hhml.utils.__all__)
def test_every_public_name_of_hhml_utils_is_its_submodule_object(name: str) -> None:
    value = getattr(hhml.utils, name)
    module = sys.modules[value.__module__]
    assert module.__name__.startswith("hhml.utils.")
    assert getattr(module, name) is value
    assert name in dir(hhml.utils)


def test_an_unknown_hhml_utils_name_is_an_attribute_error_listing_the_names() -> None:
    with pytest.raises(AttributeError, match=r"'nosuch'.*resolve_device"):
        hhml.utils.nosuch  # noqa: B018
    # the submodule fallback of `from package import submodule` still works
    from hhml.utils import cpp_build

    assert cpp_build.__name__ == "hhml.utils.cpp_build"
