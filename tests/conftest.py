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


def _pooled_pixels():
    """A stand-in backbone: 2x2 average-pooled pixels (12-d), probs from a fixed projection; fast, so
    metric tests need no real network (built in a function so conftest imports no fewgan metrics)."""
    import torch.nn.functional as F

    from fewgan.metrics.features import Backbone

    class _PooledPixels(Backbone):
        name = "fake-pooled"
        cache_tag = "fake-pooled-v1"
        feature_dim = 12
        num_classes = 4

        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.randn(12, 4, generator=torch.Generator().manual_seed(0)))

        def forward(self, x_uint8):
            x = x_uint8.float()
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            f = F.adaptive_avg_pool2d(x / 255.0, 2).flatten(1)
            return f, (f @ self.w).softmax(1)

    return _PooledPixels()


@pytest.fixture
def fake_backbone(monkeypatch, tmp_path):
    """The stand-in backbone under the names fake, fake2 and effnet-lite2, with a private feature cache."""
    from fewgan.metrics import evaluate as ev

    monkeypatch.setenv("FEWGAN_CACHE", str(tmp_path / "cache"))
    bb = _pooled_pixels()
    monkeypatch.setattr(ev, "_BACKBONES", {"fake": bb, "fake2": bb, "effnet-lite2": bb})
    return bb
