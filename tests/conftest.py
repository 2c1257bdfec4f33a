"""Shared configuration: the hypothesis profile, the check that convlab is an installed build,
and fixtures used across the signal-level tests."""

import importlib
import os
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Test modules import the plain-numpy oracles from tests/_reference.py. Only this directory
# goes on sys.path (never the repository root, which holds the uncompiled source tree).
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

settings.register_profile(
    "convlab",
    deadline=None,
    max_examples=100,
    derandomize=True,  # reproducible in CI: the same examples on every run
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("convlab-long", parent=settings.get_profile("convlab"), max_examples=500,
                          derandomize=False)
settings.load_profile(os.environ.get("CONVLAB_HYPOTHESIS_PROFILE", "convlab"))


def pytest_configure(config):
    try:
        convlab = importlib.import_module("convlab")
        direct = importlib.import_module("convlab._kernels._direct")
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise pytest.UsageError(
            "convlab must be installed as a build (pip install . or the editable meson-python "
            f"install) so that its compiled kernels import; importing it failed: {exc}"
        ) from exc
    ext = getattr(direct, "__file__", "") or ""
    if not ext.endswith((".so", ".pyd")) and ".cpython-" not in ext:
        raise pytest.UsageError(f"convlab._kernels._direct is not a compiled extension: {ext!r}")
    config._convlab_paths = (convlab.__file__, ext)


def pytest_report_header(config):
    paths = getattr(config, "_convlab_paths", None)
    if paths:
        return [f"convlab: {paths[0]}", f"convlab._kernels._direct: {paths[1]}"]
    return []


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id, so each test has its own reproducible data."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def legacy_printoptions():
    with np.printoptions(legacy=False):
        yield



@pytest.fixture(autouse=True)
def _threads_on_small_problems(monkeypatch):
    """convlab runs small problems on fewer threads (convlab._workers.threads_for): the tests'
    problems are small, so that the threaded paths of every kernel are exercised here the
    threshold is lifted (tests/test_threads.py checks the threshold itself)."""
    from convlab import _workers

    monkeypatch.setattr(_workers, "_WORK_PER_THREAD", 1)


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module of PyTorch oracles: the comparisons time nothing,
    and torch's threads would only compete with convlab's."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
