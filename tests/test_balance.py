"""Issue 6: conditional GAN, NDB, the collapse monitor and the adaptive balance controller."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from conftest import tiny_config
from fewgan import config as config_mod
from fewgan.cli import app
from fewgan.data import ImageData
from fewgan.metrics.ndb import (assign_cells, js_divergence, kmeans, ndb, ndb_cells,
                                two_proportion_z_test)
from fewgan.nets import build_networks
from fewgan.nets.conditional import ConditionalDCGANDiscriminator, ConditionalDCGANGenerator
from fewgan.sampling import class_grid, class_index
from fewgan.training.schedules.autobalance import AutoBalanceSchedule, decide, ema_update, signal_value
from fewgan.training.monitors.collapse import (CollapseMonitor, coefficient_of_variation, duplicate_fraction,
                                     duplicate_threshold, mean_pairwise_distance, nearest_neighbour_distances,
                                     pixel_features)
from fewgan.training.loop import Trainer

runner = CliRunner()
EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


# ============================================================================ conditional nets


@pytest.mark.parametrize("mode,sn", [("projection", False), ("projection", True), ("concat", False)])
def test_conditional_discriminator_uses_the_label(mode, sn):
    torch.manual_seed(0)
    d = ConditionalDCGANDiscriminator(3, channels=3, resolution=16, width=8, spectral_norm=sn, mode=mode)
    for _ in range(3):  # a few training forwards (SN power iterations, BN statistics) ...
        d(torch.randn(8, 3, 16, 16), torch.randint(3, (8,)))
    d.eval()  # ... then deterministic forwards
    x = torch.randn(6, 3, 16, 16)
    y0, y1 = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    out0, out1 = d(x, y0), d(x, y1)
    assert out0.shape == (6,)
    assert torch.equal(out0, d(x, y0))
    assert (out0 - out1).abs().min() > 0  # every sample's logit moves with its label
    with pytest.raises(ValueError, match="needs labels"):
        d(x, None)


def test_projection_logit_is_linear_plus_embedding_dot_sum_pooled_features():
    torch.manual_seed(0)
    d = ConditionalDCGANDiscriminator(4, channels=3, resolution=16, width=8).eval()
    with torch.no_grad():
        d.embed.weight.normal_()  # make the projection term large enough to matter
    x, y = torch.randn(5, 3, 16, 16), torch.tensor([0, 1, 2, 3, 1])
    phi = d.trunk.features(x).sum(dim=(2, 3))
    expected = d.linear(phi).squeeze(1) + (d.embed.weight[y] * phi).sum(1)
    assert torch.allclose(d(x, y), expected, atol=1e-5)
    assert not hasattr(d.trunk, "head")  # the unconditional head is not trained alongside


def test_spectral_norm_covers_the_projection_embedding():
    torch.manual_seed(0)
    d = ConditionalDCGANDiscriminator(5, channels=3, resolution=16, width=8, spectral_norm=True)
    for _ in range(30):  # one power iteration per training forward
        d(torch.randn(4, 3, 16, 16), torch.randint(5, (4,)))
    for m in (d.embed, d.linear):
        assert hasattr(m, "parametrizations")
        top = torch.linalg.matrix_norm(m.weight.detach(), ord=2)
        assert 0.9 <= float(top) <= 1.1


def test_conditional_generator_output_depends_on_label():
    torch.manual_seed(0)
    g = ConditionalDCGANGenerator(3, nz=16, channels=3, resolution=16, width=8).eval()
    assert g.body.in_features == 16 + 128  # cat[z, Emb_G(y) in R^128] feeds the first ConvT
    z = torch.randn(4, 16)
    a, b = g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.full((4,), 2))
    assert a.shape == (4, 3, 16, 16)
    assert torch.equal(a, g(z, torch.zeros(4, dtype=torch.long)))
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 0


def test_build_networks_picks_conditional_nets(tiny_npz):
    cfg = tiny_config(tiny_npz, **{"model.conditional": True})
    g, d = build_networks(cfg, num_classes=2)
    assert g.conditional and d.conditional and d.mode == "projection"
    g, d = build_networks(tiny_config(tiny_npz, **{"model.conditional": True, "model.cond_mode": "concat"}),
                          num_classes=2)
    assert d.mode == "concat" and d.trunk.features[0].in_channels == 3 + 2
    with pytest.raises(ValueError, match="labelled data"):
        build_networks(cfg, num_classes=0)
    with pytest.raises(ValueError, match="projection, concat"):
        build_networks(tiny_config(tiny_npz, **{"model.conditional": True, "model.cond_mode": "nope"}), num_classes=2)
    with pytest.raises(KeyError, match="known: dcgan"):
        build_networks(tiny_config(tiny_npz, **{"model.conditional": True, "model.arch": "mlp"}), num_classes=2)
    g, d = build_networks(tiny_config(tiny_npz))
    assert not getattr(g, "conditional", False) and not getattr(d, "conditional", False)


def test_class_grid_and_class_index():
    y, cols = class_grid(10, 64)
    assert cols == 6 and y.tolist() == [c for c in range(10) for _ in range(6)]  # one row per class
    y, cols = class_grid(2, 64)
    assert cols == 8 and len(y) == 64 and y.tolist() == [0] * 32 + [1] * 32  # 4 rows per class
    y, cols = class_grid(120, 64)
    assert y.tolist() == list(range(64)) and cols == 8  # more classes than images: one each
    assert class_index("dog", ["cat", "dog"]) == 1 and class_index("0", ["cat", "dog"]) == 0
    with pytest.raises(ValueError, match="0: cat, 1: dog"):
        class_index("cow", ["cat", "dog"])


@pytest.fixture
def named_npz(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "named.npz"
    np.savez(p, x=rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8), y=np.arange(40) % 2,
             classes=np.array(["cat", "dog"]))
    return p


SMALL = ["--resolution", "16", "--model.g_width=8", "--model.d_width=8", "--model.nz=16", "--train.batch_size=8",
         "--log.progress=false", "--log.sample_every=0", "--log.ckpt_every=0", "--log.n_fixed=8"]


def test_sample_class_on_a_tiny_conditional_run(named_npz, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--preset", "cdcgan", "--data", str(named_npz), "--steps", "2", "--out", str(out),
                            *SMALL])
    assert r.exit_code == 0, r.output
    # the training grid holds one class per row: 2 classes x 4 columns of 16 px images, enlarged 2x
    assert Image.open(out / "samples" / "final.png").size == (2 * (4 * 18 + 2), 2 * (2 * 18 + 2))
    r = runner.invoke(app, ["sample", str(out), "-n", "5", "--class", "dog", "-o", str(tmp_path / "dog.npz")])
    assert r.exit_code == 0, r.output
    f = np.load(tmp_path / "dog.npz")
    assert f["x"].shape == (5, 16, 16, 3) and f["y"].tolist() == [1] * 5
    r = runner.invoke(app, ["sample", str(out), "-n", "3", "--class", "0", "-o", str(tmp_path / "cat.npz")])
    assert r.exit_code == 0 and np.load(tmp_path / "cat.npz")["y"].tolist() == [0] * 3
    # same noise seed, other class -> other images
    assert not np.array_equal(np.load(tmp_path / "cat.npz")["x"], f["x"][:3])
    r = runner.invoke(app, ["sample", str(out), "-n", "8", "-o", str(tmp_path / "grid.png")])
    assert r.exit_code == 0 and Image.open(tmp_path / "grid.png").size == (4 * 18 + 2, 2 * 18 + 2)
    r = runner.invoke(app, ["sample", str(out), "--class", "cow", "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "cow" in r.output and "1: dog" in r.output


def test_sample_class_refused_for_unconditional_run(tiny_npz, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), *SMALL])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["sample", str(out), "--class", "1", "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "conditional" in r.output


# ============================================================================ NDB


def _mixture(n, centres, rng, scale=0.3, weights=None):
    k = len(centres)
    which = rng.choice(k, size=n, p=weights)
    return torch.as_tensor(centres[which] + scale * rng.standard_normal((n, centres.shape[1])))


def test_two_proportion_z_test_closed_form():
    z, p = two_proportion_z_test(torch.tensor([0.5, 0.0, 0.2]), 100, torch.tensor([0.3, 0.0, 0.2]), 100)
    # pooled 0.4, se = sqrt(0.24 * 0.02), z = 0.2 / se
    assert float(z[0]) == pytest.approx(0.2 / math.sqrt(0.24 * 0.02))
    assert float(p[0]) == pytest.approx(math.erfc(float(z[0]) / math.sqrt(2)))
    assert float(p[0]) == pytest.approx(0.003892, abs=1e-5)
    assert float(z[1]) == 0 and float(p[1]) == 1  # a cell empty in both samples is not "different"
    assert float(z[2]) == 0 and float(p[2]) == pytest.approx(1.0)


def test_js_divergence_bounds():
    assert js_divergence(torch.tensor([0.2, 0.3, 0.5]), torch.tensor([2.0, 3.0, 5.0])) == pytest.approx(0, abs=1e-12)
    assert js_divergence(torch.tensor([1.0, 0, 0]), torch.tensor([0, 0.5, 0.5])) == pytest.approx(math.log(2))
    assert 0 < js_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])) < math.log(2)


def test_kmeans_finds_separated_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 4)) * 20
    x = _mixture(500, centres, rng, scale=0.1)
    c, labels = kmeans(x, 5, seed=3)
    # every true centre has a found centre within the noise scale
    d = torch.cdist(torch.as_tensor(centres), c)
    assert float(d.min(1).values.max()) < 0.2
    assert torch.equal(labels, assign_cells(x, c))
    c2, _ = kmeans(x, 5, seed=3)
    assert torch.equal(c, c2)
    with pytest.raises(ValueError, match="k=0"):
        kmeans(x, 0)


def test_ndb_near_zero_for_one_distribution_and_large_for_collapse():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((20, 8)) * 4
    real, gen = _mixture(1000, centres, rng), _mixture(1000, centres, rng)
    same = ndb(real, gen, k=20, seed=0)
    assert same.k == 20 and same.ndb_k <= 0.15 and same.js < 0.02
    assert float(same.real_props.sum()) == pytest.approx(1) and float(same.gen_props.sum()) == pytest.approx(1)
    w = np.zeros(20)
    w[:2] = 0.5  # a generator that covers 2 of 20 modes
    collapsed = ndb(real, _mixture(1000, centres, rng, weights=w), k=20, seed=0)
    assert collapsed.ndb_k >= 0.8 and collapsed.js > 0.3
    assert collapsed.ndb == int(collapsed.different.sum())
    # precomputed cells give the same answer as letting ndb() cluster with the same seed
    c, _ = kmeans(real, 20, seed=0)
    assert ndb(real, gen, centers=c).ndb == same.ndb


def test_ndb_cells_scale_with_small_sets():
    assert ndb_cells(1000) == 50 and ndb_cells(192) == 19 and ndb_cells(15) == 2 and ndb_cells(5000, 30) == 30


def test_metrics_from_features_reports_ndb():
    from fewgan.metrics.evaluate import EvalSettings, metrics_from_features

    g = torch.Generator().manual_seed(0)
    f_real, f_gen = torch.randn(120, 6, generator=g), torch.randn(120, 6, generator=g)
    p_gen = torch.softmax(torch.randn(120, 10, generator=g), 1)
    rec, _ = metrics_from_features(f_real, f_gen, p_gen, EvalSettings(n_boot=0, kid_subset=50, kid_subsets=5))
    assert rec["ndb_cells"] == 12 and 0 <= rec["ndb_k"] <= 1 and rec["ndb"] == round(rec["ndb_k"] * 12)
    assert 0 <= rec["ndb_js"] <= math.log(2)


def test_experiment_tables_carry_ndb(tmp_path):
    from fewgan.experiments.runner import write_tables

    for i, v in enumerate([0.1, 0.3]):
        d = tmp_path / "runs" / f"r{i}"
        d.mkdir(parents=True)
        row = {"run": f"r{i}", "variant": "dcgan", "data": "emoji", "seed": i, "step": 10, "fd": 1.0, "kid": 0.1,
               "is": 1.0, "precision": 0.5, "recall": 0.5, "density": 1.0, "coverage": 0.5,
               "near_copy_fraction": 0.0, "ndb_k": v, "ndb_js": 0.01, "backbone": "b", "n_gen": 10, "n_real": 10,
               "img_per_s": 100.0}
        (d / "done.json").write_text(json.dumps(row))
    write_tables(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "NDB/K" in summary and "0.200 ± 0.141" in summary
    assert "ndb_k_mean" in (tmp_path / "summary.csv").read_text()


# ============================================================================ collapse monitor


class _Latent(nn.Module):
    def draw(self, n, generator=None):
        return torch.rand(n, 4, generator=generator)

    def forward(self, noise):
        return noise


class _FakePipe(nn.Module):
    """A 'generator' that returns distinct real images ordered by the noise (healthy) or always the same one."""

    conditional = False

    def __init__(self, images, collapsed):
        super().__init__()
        self.latent, self.images, self.collapsed = _Latent(), images, collapsed

    def forward(self, noise, y=None):
        idx = torch.zeros(len(noise), dtype=torch.long) if self.collapsed else \
            torch.argsort(noise[:, 0]) % len(self.images)
        return self.images[idx].float() / 127.5 - 1


def _mode_images(n=400, modes=8, seed=0):
    """uint8 16x16 images from `modes` distinct colour layouts plus noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(modes, 3, 4, 4, generator=g) * 255
    which = torch.arange(n) % modes
    x = torch.nn.functional.interpolate(base[which], size=16, mode="nearest")
    return (x + 10 * torch.randn(x.shape, generator=g)).clamp(0, 255).to(torch.uint8)


MON = {"monitor.every": 10, "monitor.warmup": 20, "monitor.window": 10, "monitor.n": 128, "monitor.ndb_cells": 8}


def _run_monitor(tiny_npz, collapsed, stats_fn, steps=80, **over):
    cfg = tiny_config(tiny_npz, **{"log.monitors": ["collapse"], **MON, **over})
    x = _mode_images()
    trainer = SimpleNamespace(data=ImageData(x=x), variant=SimpleNamespace(sampler=lambda: pipe),
                              fixed_noise_seed=11, step=0)
    pipe = _FakePipe(x, collapsed)
    mon = CollapseMonitor(cfg)
    warnings, records = [], []
    for step in range(1, steps + 1):
        stats = {"step": step, **stats_fn(step)}
        trainer.step = step
        out = mon(trainer, stats)
        records.append(out)
        warnings += [(step, w) for w in out.get("warnings", [])]
    return warnings, records


def _healthy(step):
    r = math.sin(step * 1.3)  # deterministic wiggle
    return {"d_real": 0.7 + 0.05 * r, "d_fake": 0.3 - 0.05 * r, "loss_d": 1.2 + 0.1 * r, "loss_g": 1.0 - 0.1 * r}


def _saturated(step):
    return {"d_real": 0.995, "d_fake": 0.004, "loss_d": 0.01, "loss_g": 6.0}


def test_monitor_quiet_on_a_healthy_run(tiny_npz):
    warnings, records = _run_monitor(tiny_npz, collapsed=False, stats_fn=_healthy)
    assert warnings == []
    checks = [r for r in records if "mon_diversity" in r]
    assert len(checks) == 8  # every 10 iterations, warm-up included (values logged, no warnings)
    assert all(r["mon_diversity"] > 0.7 and r["mon_ndb_k"] <= 0.25 for r in checks)
    assert all(r["mon_duplicates"] <= 0.15 for r in checks)  # real images at this n: ~5 %
    assert all(r["mon_cv_loss_d"] < 0.2 for r in checks)


def test_monitor_fires_on_collapse_and_saturation_once_each(tiny_npz):
    warnings, records = _run_monitor(tiny_npz, collapsed=True, stats_fn=_saturated)
    fired = {w.split(" ")[0]: step for step, w in warnings}
    # nothing before the warm-up; then each signal fires once, when it turns on
    assert fired == {"saturation": 21, "diversity": 30, "duplicates": 30, "ndb": 30}
    assert len(warnings) == 4
    check = records[29]
    assert check["mon_diversity"] == 0 and check["mon_ndb_k"] > 0.6 and check["mon_d_real"] > 0.95
    assert check["mon_duplicates"] == 1
    assert any(s == 30 and w.startswith("diversity fired at step 30: ") for s, w in warnings)


def test_monitor_fires_on_oscillating_losses(tiny_npz):
    def swinging(step):
        return {**_healthy(step), "loss_d": 0.02 if step % 2 else 4.0}

    warnings, _ = _run_monitor(tiny_npz, collapsed=False, stats_fn=swinging, steps=40)
    assert [w.split(" ")[0] for _, w in warnings] == ["oscillation_loss_d"]
    warnings, _ = _run_monitor(tiny_npz, collapsed=False, stats_fn=lambda s: {**_healthy(s), "loss_g": float("nan")},
                               steps=25)
    assert {w.split(" ")[0] for _, w in warnings} == {"nonfinite_loss_g"}


def test_monitor_keeps_other_warnings_and_leaves_the_rng_alone(tiny_npz):
    cfg = tiny_config(tiny_npz, **{"log.monitors": ["collapse"], **MON, "monitor.warmup": 0, "monitor.every": 1})
    x = _mode_images()
    pipe = _FakePipe(x, collapsed=True)
    trainer = SimpleNamespace(data=ImageData(x=x), variant=SimpleNamespace(sampler=lambda: pipe), fixed_noise_seed=1)
    state = torch.get_rng_state()
    out = CollapseMonitor(cfg)(trainer, {"step": 1, **_saturated(1), "warnings": ["from another monitor"]})
    assert torch.equal(state, torch.get_rng_state())
    assert out["warnings"][0] == "from another monitor" and len(out["warnings"]) == 4


def test_duplicates_fire_on_few_far_apart_modes_that_mean_distance_misses(tiny_npz):
    """The failure seen on the real collapsed run: G repeats a handful of faces that are far apart,
    so the mean pairwise distance stays high, but almost every sample has a near-twin."""
    x = _mode_images()
    few = torch.cat([x[:4]] * 32)  # 4 distinct images, each repeated 32 times
    cfg = tiny_config(tiny_npz, **{"log.monitors": ["collapse"], **MON})
    mon = CollapseMonitor(cfg)
    sig = mon.signals(few.float() / 127.5 - 1, ImageData(x=x))
    assert sig["mon_diversity"] > cfg.monitor.diversity_min  # the old signal stays quiet
    assert sig["mon_duplicates"] == 1 and "duplicates" in mon.firing(sig, {})


def test_duplicate_threshold_and_fraction_match_their_definitions():
    f = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert nearest_neighbour_distances(f).tolist() == [1, 1, 2, 4]
    assert duplicate_fraction(f, 1.5) == 0.5 and duplicate_fraction(f, 1.0) == 0  # strictly closer
    # one subset holding every row: the quantile of those four distances
    assert duplicate_threshold(f, n=10, quantile=0.5) == pytest.approx(float(torch.quantile(torch.tensor([1., 1, 2, 4]), 0.5)))
    # real-vs-real at the same n scores about the quantile
    g = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 16, generator=g, dtype=torch.float64)
    t = duplicate_threshold(real[:2000], n=128, quantile=0.05, seed=1)
    fr = [duplicate_fraction(real[2000 + 128 * i:2000 + 128 * (i + 1)], t) for i in range(15)]
    assert 0.02 < sum(fr) / len(fr) < 0.09
    with pytest.raises(ValueError, match="dup_quantile"):
        CollapseMonitor(config_mod.from_dict({"monitor": {"dup_quantile": 1.5}}))


def test_signal_functions():
    assert coefficient_of_variation([1.0, 1.0, 1.0]) == 0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(0.5)
    assert mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5)
    f = pixel_features(torch.full((2, 3, 32, 32), 255, dtype=torch.uint8), size=4)
    assert f.shape == (2, 48) and torch.all(f == 1)


# ============================================================================ balance controller


def _cfg(**b):
    return config_mod.from_dict({"train": {"schedule": "autobalance"}, "balance": b})


def test_controller_moves_g_steps_the_right_way_within_bounds():
    s = AutoBalanceSchedule(_cfg(every=5, min_g=1, max_g=4, ema=0.5))
    assert s.counts(0) == (1, 1)
    d_ahead = {"loss_g": 4.0, "loss_d": 0.1}  # log ratio 3.7: D is winning -> more G updates
    gs, decisions = [], []
    for step in range(40):
        out = s.update(step, d_ahead)
        gs.append(s.counts(step + 1)[1])
        if "balance_change" in out:
            decisions.append(out["balance_change"])
    assert gs[4] == 2 and gs[9] == 3 and gs[14] == 4 and max(gs) == 4 and gs[-1] == 4  # +1 per decision, capped
    assert decisions == [1, 1, 1] + [0] * 5
    g_ahead = {"loss_g": 0.2, "loss_d": 2.0}  # log ratio -2.3: G is winning -> fewer G updates
    for step in range(40, 80):
        s.update(step, g_ahead)
        assert 1 <= s.counts(step + 1)[1] <= 4
    assert s.counts(80)[1] == 1
    for step in range(80, 120):  # inside the band: hold
        s.update(step, {"loss_g": 1.0, "loss_d": 1.0})
    assert s.counts(120)[1] == 1


def test_controller_settles_in_band_on_a_synthetic_plant():
    # a plant in which each extra G update lowers the log ratio by 0.5: it enters the band at g = 4
    s = AutoBalanceSchedule(_cfg(every=5, ema=0.5, max_g=8))
    for step in range(200):
        g = s.counts(step)[1]
        out = s.update(step, {"loss_g": math.exp(2.0 - 0.5 * g), "loss_d": 1.0})
    assert s.counts(200)[1] in (3, 4) and -0.5 <= out["balance_ema"] <= 0.5


def test_controller_d_real_signal_and_state_round_trip():
    s = AutoBalanceSchedule(_cfg(signal="d_real", every=2, ema=0.0))
    assert (s.low, s.high) == (0.6, 0.8)  # the signal's default band
    for step in range(6):
        s.update(step, {"d_real": 0.95})
    assert s.counts(6)[1] == 4
    t = AutoBalanceSchedule(_cfg(signal="d_real", every=2, ema=0.0))
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    for step in range(6, 12):
        assert s.update(step, {"d_real": 0.5}) == t.update(step, {"d_real": 0.5})
        assert s.counts(step + 1) == t.counts(step + 1)


def test_controller_pure_parts_and_validation():
    assert signal_value("log_ratio", {"loss_g": math.e, "loss_d": 1.0}) == pytest.approx(1)
    assert signal_value("log_ratio", {"loss_g": -1.0, "loss_d": 1.0}) is None  # hinge losses can be <= 0
    assert signal_value("d_real", {"d_real": 0.7}) == 0.7
    assert ema_update(None, 3.0, 0.9) == 3.0 and ema_update(1.0, 3.0, 0.5) == 2.0
    assert (decide(1.0, -0.5, 0.5), decide(-1.0, -0.5, 0.5), decide(0.0, -0.5, 0.5)) == (1, -1, 0)
    with pytest.raises(ValueError, match="min_g"):
        AutoBalanceSchedule(_cfg(min_g=0))
    with pytest.raises(ValueError, match="below balance.high"):
        AutoBalanceSchedule(_cfg(low=1.0, high=0.0))
    with pytest.raises(ValueError, match="log_ratio, d_real"):
        AutoBalanceSchedule(_cfg(signal="nope"))
    # train.g_steps is the starting ratio, clamped into the bounds
    cfg = config_mod.from_dict({"train": {"schedule": "autobalance", "g_steps": 20}, "balance": {"max_g": 6}})
    assert AutoBalanceSchedule(cfg).counts(0) == (1, 6)


# ============================================================================ in the training loop


RESUME_OPTS = {"train.schedule": "autobalance", "balance.every": 2, "balance.low": -10.0, "balance.high": -9.0,
               "balance.max_g": 3, "log.monitors": ["collapse"], "monitor.every": 2, "monitor.warmup": 0,
               "monitor.window": 2, "monitor.n": 8, "monitor.ndb_cells": 4, "monitor.diversity_min": 2.0}


def _lines(run):
    drop = ("time", "img_per_s")
    return [{k: v for k, v in json.loads(l).items() if k not in drop}
            for l in (run / "stats.jsonl").read_text().splitlines()]


def test_resume_equals_uninterrupted_with_autobalance_and_monitor(tiny_npz, tmp_path):
    from conftest import assert_resume_exact

    assert_resume_exact(lambda n: tiny_config(tiny_npz, **{"train.steps": n, **RESUME_OPTS}), tmp_path)
    la, lb = _lines(tmp_path / "a"), _lines(tmp_path / "b")
    assert la == lb
    assert [l["g_updates"] for l in la] == [1, 1, 2, 2, 3, 3]  # the controller acted: D far ahead of the band
    assert [l.get("balance_change") for l in la] == [None, 1, None, 1, None, 0]
    assert any("warnings" in l for l in la) and "mon_diversity" in la[1]


def test_monitor_does_not_change_training(tiny_npz, tmp_path):
    with_mon = Trainer(tiny_config(tiny_npz, **{"train.steps": 4, **RESUME_OPTS}), tmp_path / "a")
    with_mon.run()
    opts = {k: v for k, v in RESUME_OPTS.items() if k != "log.monitors"}
    without = Trainer(tiny_config(tiny_npz, **{"train.steps": 4, **opts}), tmp_path / "b")
    without.run()
    for k, v in with_mon.variant.G.state_dict().items():
        assert torch.equal(v, without.variant.G.state_dict()[k]), k
    assert [l["loss_d"] for l in _lines(tmp_path / "a")] == [l["loss_d"] for l in _lines(tmp_path / "b")]


def test_conditional_training_steps_change_parameters(tiny_npz, tmp_path):
    tr = Trainer(tiny_config(tiny_npz, **{"model.conditional": True, "train.steps": 2}), tmp_path / "r")
    before = {k: v.clone() for k, v in tr.variant.D.state_dict().items()}
    tr.run()
    after = tr.variant.D.state_dict()
    assert not torch.equal(before["embed.weight"], after["embed.weight"])  # the label embedding is trained
    assert tr.fixed_y.tolist() == [0] * 4 + [1] * 4 and tr.grid_cols == 4


# ============================================================================ presets and specs


def test_presets_load():
    c = config_mod.load_preset("cdcgan")
    assert c.model.conditional and c.model.cond_mode == "projection" and c.model.arch == "dcgan"
    assert c.model.spectral_norm  # docs/methods.md §12: the projection D is combined with SN
    assert not config_mod.load_preset("cdcgan-nosn").model.spectral_norm
    a = config_mod.load_preset("dcgan-autobalance")
    assert a.train.schedule == "autobalance" and (a.balance.min_g, a.balance.max_g) == (1, 8)
    n = config_mod.load_preset("dcgan-noisy").loss
    assert n.flip_p == 0.05 and n.smooth == "none"


def test_experiment_specs_load():
    from fewgan.experiments.spec import load_spec

    w = load_spec(EXPERIMENTS / "weaver-gadv.yaml")
    jobs = w.jobs()
    w50 = load_spec(EXPERIMENTS / "weaver-gadv50.yaml").jobs()  # ratio 50: seed 0 only (its cost)
    assert len(jobs) == 4 * 3 and len(w50) == 1
    assert sorted({j.cfg.train.g_steps for j in jobs + w50}) == [1, 2, 4, 10, 50]
    assert {(j.cfg.train.steps, j.cfg.train.d_steps, j.cfg.data.resolution, j.cfg.train.fast)
            for j in jobs + w50} == {(400, 1, 64, True)}
    c = load_spec(EXPERIMENTS / "collapse-demo.yaml").jobs()
    assert len(c) == 4 and all(j.cfg.log.monitors == ("collapse",) for j in c)
    d = load_spec(EXPERIMENTS / "dog-tricks.yaml")
    assert len(d.jobs()) == 7 * 2 * 3 and d.steps >= 1500
    assert {j.cfg.train.batch_size for j in d.jobs()} == {64}


# ============================================================================ equal-compute budget


def test_max_updates_stops_once_the_update_budget_is_spent(tiny_npz, tmp_path):
    # 1 D + 3 G updates per iteration: 4, 8, 12 updates after iterations 1, 2, 3; a budget of 10
    # ends the run after iteration 3 (checked between iterations), long before train.steps = 50
    cfg = tiny_config(tiny_npz, **{"train.steps": 50, "train.g_steps": 3, "train.max_updates": 10})
    res = Trainer(cfg, tmp_path / "r").run()
    assert res.step == 3 and not res.interrupted
    rows = [json.loads(line) for line in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert [r["updates"] for r in rows] == [4, 8, 12]
    # the count travels in the checkpoint: a resumed run with a larger budget continues from 12
    more = tiny_config(tiny_npz, **{"train.steps": 50, "train.g_steps": 3, "train.max_updates": 20})
    t = Trainer(more, tmp_path / "r", resume=True)
    assert t.updates == 12
    assert t.run().step == 5


def test_max_updates_zero_means_no_limit_and_negative_is_refused(tiny_npz, tmp_path):
    assert Trainer(tiny_config(tiny_npz, **{"train.steps": 3}), tmp_path / "a").run().step == 3
    with pytest.raises(ValueError, match="train.max_updates"):
        Trainer(tiny_config(tiny_npz, **{"train.max_updates": -1}), tmp_path / "b")
