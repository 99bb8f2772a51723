"""Devices, seeding, dtypes and atomic file I/O."""

from __future__ import annotations

import json
import math
import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hhml.errors import ConfigError, DeviceError, NumericalInstabilityError
from hhml.utils import (
    append_jsonl,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    make_generator,
    real_dtype_of,
    resolve_complex_dtype,
    resolve_device,
    seed_everything,
)

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

# ----------------------------------------------------------------------------- device


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected
    assert resolve_device("auto").type == expected


@needs_no_cuda
@pytest.mark.parametrize("request_", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_gpu_raises_device_error(request_: str | torch.device) -> None:
    with pytest.raises(DeviceError) as info:
        resolve_device(request_)
    text = str(info.value)
    assert "CUDA is not available" in text
    assert "'cpu'" in text
    assert repr(str(request_)) in text


@needs_cuda
def test_cuda_index_out_of_range() -> None:
    count = torch.cuda.device_count()
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda").index is not None
    with pytest.raises(DeviceError, match=f"{count} CUDA device"):
        resolve_device(f"cuda:{count}")


@pytest.mark.parametrize("request_", ["gpu", "CPU", "cuda:x", "", "cuda:-1"])
def test_unknown_device_string(request_: str) -> None:
    with pytest.raises(DeviceError) as info:
        resolve_device(request_)
    assert f"unknown device {request_!r}" in str(info.value)
    assert "'auto', 'cpu', 'cuda' or 'cuda:N'" in str(info.value)


def test_unsupported_device_type() -> None:
    with pytest.raises(DeviceError, match="'meta' is not supported"):
        resolve_device(torch.device("meta"))


# ----------------------------------------------------------------------------- seeding


@pytest.fixture
def restore_torch_determinism() -> Iterator[None]:
    state = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    yield
    torch.use_deterministic_algorithms(state[0], warn_only=state[1])
    torch.backends.cudnn.deterministic = state[2]
    torch.backends.cudnn.benchmark = state[3]
    if state[4] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = state[4]


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(5).tolist()


@pytest.mark.usefixtures("restore_torch_determinism")
@pytest.mark.parametrize("seed", [0, 12345, 2**40 + 7, 2**63 - 1])
def test_seeding_reproduces_draws(seed: int) -> None:
    seed_everything(seed)
    first = _draws()
    seed_everything(seed)
    assert _draws() == first
    seed_everything(seed + 1 if seed < 2**63 - 1 else seed - 1)
    assert _draws() != first


@pytest.mark.usefixtures("restore_torch_determinism")
def test_small_seeds_match_the_libraries_own_seeding() -> None:
    seed_everything(7)
    ours = _draws()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    assert _draws() == ours


@pytest.mark.usefixtures("restore_torch_determinism")
def test_deterministic_flags() -> None:
    seed_everything(1, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    seed_everything(1, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True, "3", None])
def test_invalid_seed(seed: object) -> None:
    with pytest.raises(ConfigError, match="seed"):
        seed_everything(seed)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="seed"):
        make_generator(seed)  # type: ignore[arg-type]


def test_make_generator_is_reproducible_and_independent_of_global_rng() -> None:
    first = torch.rand(4, generator=make_generator(3, "cpu"))
    torch.rand(100)  # consuming the global RNG must not matter
    second = torch.rand(4, generator=make_generator(3, torch.device("cpu")))
    assert torch.equal(first, second)
    assert not torch.equal(first, torch.rand(4, generator=make_generator(4)))
    assert make_generator(0).device == torch.device("cpu")


# ----------------------------------------------------------------------------- dtypes


def test_complex_dtypes() -> None:
    assert resolve_complex_dtype("complex64") is torch.complex64
    assert resolve_complex_dtype("complex128") is torch.complex128
    assert resolve_complex_dtype(torch.complex128) is torch.complex128
    assert real_dtype_of(torch.complex64) is torch.float32
    assert real_dtype_of("complex128") is torch.float64


@pytest.mark.parametrize("name", ["float32", "complex32", torch.float64, "Complex64"])
def test_unsupported_dtype(name: str | torch.dtype) -> None:
    with pytest.raises(ConfigError, match="choose one of 'complex64', 'complex128'"):
        resolve_complex_dtype(name)
    with pytest.raises(ConfigError):
        real_dtype_of(name)


# ----------------------------------------------------------------------------- atomic I/O


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    assert atomic_write_bytes(path, b"one") == path
    assert path.read_bytes() == b"one"
    atomic_write_text(path, "twö")
    assert path.read_text(encoding="utf-8") == "twö"
    assert _entries(tmp_path) == ["a.bin"]


def test_new_file_mode_follows_umask_and_existing_mode_is_kept(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    umask = os.umask(0o022)
    os.umask(umask)
    path = atomic_write_text(tmp_path / "new.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o600)
    atomic_write_text(path, "y")
    assert path.stat().st_mode & 0o777 == 0o600


def test_failed_serialisation_leaves_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    atomic_torch_save({"w": torch.arange(3)}, path)
    before = path.read_bytes()

    def local_function() -> None:  # pickle cannot serialise local functions
        pass

    with pytest.raises((AttributeError, pickle.PicklingError)):
        atomic_torch_save({"w": torch.zeros(1000), "f": local_function}, path)
    assert path.read_bytes() == before
    assert _entries(tmp_path) == ["model.pt"]
    assert torch.equal(torch.load(path)["w"], torch.arange(3))


def test_failed_text_encoding_leaves_old_file_intact(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "c.yaml", "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "bad \udcff surrogate")
    assert path.read_text() == "old"
    assert _entries(tmp_path) == ["c.yaml"]


def test_failed_rename_cleans_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = atomic_write_bytes(tmp_path / "x", b"old")

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert _entries(tmp_path) == ["x"]


def test_append_jsonl_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 0, "loss": 0.5, "name": "α"})
    append_jsonl(
        path,
        {"step": np.int64(1), "loss": torch.tensor(0.25), "nested": {"x": [np.float32(1.5)]}},
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 0, "loss": 0.5, "name": "α"},
        {"step": 1, "loss": 0.25, "nested": {"x": [1.5]}},
    ]


@pytest.mark.parametrize(
    ("record", "where"),
    [
        ({"loss": math.nan}, "loss"),
        ({"terms": {"density": math.inf}}, "terms.density"),
        ({"xs": [1.0, -math.inf]}, r"xs\[1\]"),
        ({"loss": np.float64("nan")}, "loss"),
        ({"loss": torch.tensor(float("nan"))}, "loss"),
    ],
)
def test_append_jsonl_rejects_non_finite(
    tmp_path: Path, record: dict[str, object], where: str
) -> None:
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 0})
    with pytest.raises(
        NumericalInstabilityError, match=f"JSONL field '{where}' = .* is not finite"
    ):
        append_jsonl(path, record)
    assert path.read_text(encoding="utf-8") == '{"step":0}\n'


def test_append_jsonl_rejects_unserialisable_values(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="'obj' has type object"):
        append_jsonl(tmp_path / "m.jsonl", {"obj": object()})
    with pytest.raises(TypeError, match="shape"):
        append_jsonl(tmp_path / "m.jsonl", {"t": torch.zeros(3)})
    with pytest.raises(TypeError, match="must be a mapping"):
        append_jsonl(tmp_path / "m.jsonl", [1, 2])  # type: ignore[arg-type]
    assert not (tmp_path / "m.jsonl").exists()


def test_a_build_lock_left_by_a_killed_build_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from hhml.utils.cpp_build import STALE_LOCK_SECONDS, clear_stale_build_lock

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    build = tmp_path / "hhml_test_ext"
    build.mkdir()
    lock = build / "lock"
    lock.touch()
    assert not clear_stale_build_lock("hhml_test_ext")  # a build in progress: kept
    assert lock.exists()
    old = time.time() - STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))
    assert clear_stale_build_lock("hhml_test_ext")
    assert not lock.exists()
    assert not clear_stale_build_lock("hhml_test_ext")  # nothing left to remove
