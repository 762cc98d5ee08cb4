import numpy as np
import pytest
import torch

from fewgan import config as config_mod


@pytest.fixture(autouse=True)
def _few_threads():
    # the CI machine has 2 cores; keep tests from oversubscribing them
    torch.set_num_threads(1)
    yield


@pytest.fixture
def tiny_npz(tmp_path):
    """40 random 16x16 RGB images with 2 classes."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    y = np.arange(40) % 2
    p = tmp_path / "tiny.npz"
    np.savez(p, x=x, y=y)
    return p


def tiny_config(source, **overrides) -> config_mod.Config:
    """A small, fast config: 16 px, narrow nets, batch 8, no progress bar."""
    base = {
        "data": {"source": str(source), "resolution": 16},
        "model": {"g_width": 8, "d_width": 8, "nz": 16},
        "train": {"steps": 4, "batch_size": 8},
        "log": {"sample_every": 0, "ckpt_every": 0, "progress": False, "n_fixed": 8},
    }
    for key, value in overrides.items():
        section, name = key.split(".")
        base.setdefault(section, {})[name] = value
    return config_mod.from_dict(base)


def assert_resume_exact(make_cfg, tmp_path, steps: int = 6):
    """Train `steps` iterations straight through, and half of them then resumed to `steps`;
    assert every module's state is bit-identical. make_cfg(steps) -> Config. Returns (a, b)."""
    from fewgan.training.loop import Trainer, train

    a = Trainer(make_cfg(steps), tmp_path / "a")
    a.run()
    train(make_cfg(steps // 2), tmp_path / "b")
    b = Trainer(make_cfg(steps), tmp_path / "b", resume=True)
    assert b.step == steps // 2
    b.run()
    for name, m in a.variant.modules().items():
        sa, sb = m.state_dict(), b.variant.modules()[name].state_dict()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (name, k)
    return a, b


def pytest_runtest_setup(item):
    """Tests marked `cuda` / `mps` run only where that device is (scripts/gpu_check.sh runs them)."""
    if item.get_closest_marker("cuda") and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if item.get_closest_marker("mps"):
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            pytest.skip("needs an MPS device")
