"""Song & Kim (2023) pieces: CFT, Mean Rescaling, DeLiGAN latent, edge loss, FD search."""

import json

import pytest
import torch

from conftest import tiny_config
from fewgan import config as config_mod
from fewgan.fdsearch import Criteria, RunEvidence, instability, search
from fewgan.latents import build_latent
from fewgan.latents import CFT, DeLiGANLatent, MeanRescale
from fewgan.latents import LatentSampler
from fewgan.regularizers import edge_loss_batch, edge_loss_literal, sobel_edges
from fewgan.training.loop import Trainer


def test_cft_fd0_frozen_identity_is_bit_identical_to_gaussian(tiny_npz, tmp_path):
    runs = {}
    for name, extra in {"gauss": {}, "cft": {"latent.kind": "cft", "latent.fd": 0, "latent.cft_trainable": False}}.items():
        tr = Trainer(tiny_config(tiny_npz, **{"train.steps": 4, **extra}), tmp_path / name)
        tr.run()
        runs[name] = (tr, [json.loads(l) for l in (tmp_path / name / "stats.jsonl").read_text().splitlines()])
    (ga, sa), (cf, sc) = runs["gauss"], runs["cft"]
    assert [r["loss_d"] for r in sa] == [r["loss_d"] for r in sc]
    assert [r["loss_g"] for r in sa] == [r["loss_g"] for r in sc]
    for k, v in ga.variant.G.net.state_dict().items():
        assert torch.equal(v, cf.variant.G.net.state_dict()[k]), k
    assert torch.equal(cf.variant.G.latent.weight, torch.eye(16))


def test_cft_init_and_training():
    torch.manual_seed(0)
    c = CFT(100, 4)
    assert c.weight.shape == (104, 100) and torch.equal(c.weight[:100], torch.eye(100))
    assert abs(c.weight[100:].std().item() - 0.1) < 0.02  # N(0, 1/n)
    z = c(c.draw(4000, torch.Generator().manual_seed(1)))
    assert z.shape == (4000, 104)
    assert abs(z[:, 100:].var().item() - 1) < 0.1  # extra dims keep ~unit variance


def test_cft_is_trained_with_g(tiny_npz, tmp_path):
    tr = Trainer(tiny_config(tiny_npz, **{"latent.kind": "cft", "latent.fd": 3, "train.steps": 2}), tmp_path / "r")
    w0 = tr.variant.G.latent.weight.detach().clone()
    tr.run()
    assert not torch.equal(w0, tr.variant.G.latent.weight)
    assert tr.variant.G.net.in_features == 16 + 3


def test_mean_rescaling_shifts_each_row_by_one_constant():
    inner = LatentSampler(50)
    mr = MeanRescale(inner, -1.0, 1.0)
    noise = mr.draw(20000, torch.Generator().manual_seed(0))
    z = mr(noise)
    shift = z - inner(noise[:, :-1])
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # one constant per row
    row = shift[:, 0]
    assert row.min() >= -1 and row.max() <= 1
    assert abs(row.var().item() - 1 / 3) < 0.01  # variance of U(-1, 1)
    narrow = MeanRescale(inner, 0.2, 0.3)(MeanRescale(inner, 0.2, 0.3).draw(100))
    assert narrow.shape == (100, 50)


def test_mean_rescale_after_cft_from_config():
    cfg = config_mod.apply_overrides(config_mod.load_preset("song2023"), ["--latent.fd=2"])
    s = build_latent(cfg)
    assert isinstance(s, MeanRescale) and isinstance(s.inner, CFT) and s.out_features == 102


def test_deligan_frozen_standard_equals_gaussian():
    d = DeLiGANLatent(30, components=5, trainable=False)
    with torch.no_grad():
        d.mu.zero_()
        d.sigma.fill_(1.0)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    z = d(d.draw(1000, g1))
    eps = torch.randn(1000, 30, generator=g2)  # same stream: eps is drawn first
    assert torch.equal(z, eps)
    assert d.penalty() is None


def test_deligan_components_and_penalty():
    torch.manual_seed(0)
    d = DeLiGANLatent(8, components=4, sigma_init=0.2, assign="stratified")
    noise = d.draw(8)
    assert noise[:, -1].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    z = d(noise)
    assert torch.allclose(z[0], d.mu[0] + d.sigma[0] * noise[0, :-1])
    assert d.penalty().item() == pytest.approx((1 / 3) * 0.8 ** 2)
    assert d.mu.min() >= -1 and d.mu.max() <= 1
    with pytest.raises(ValueError, match="uniform or stratified"):
        DeLiGANLatent(8, assign="random")


def test_deligan_trains_mu_and_sigma(tiny_npz, tmp_path):
    tr = Trainer(tiny_config(tiny_npz, **{"latent.kind": "deligan", "latent.components": 4, "train.steps": 2}),
                 tmp_path / "r")
    mu0, s0 = tr.variant.G.latent.mu.detach().clone(), tr.variant.G.latent.sigma.detach().clone()
    tr.run()
    assert not torch.equal(mu0, tr.variant.G.latent.mu) and not torch.equal(s0, tr.variant.G.latent.sigma)
    stats = json.loads((tmp_path / "r" / "stats.jsonl").read_text().splitlines()[-1])
    assert "reg_latent" in stats


def test_sobel_closed_form():
    # a vertical step from -1 to 1 in luminance: |gx| = 4 * 2 / 2 ... exact: kernel sum over the step
    x = torch.full((1, 1, 5, 6), -1.0)
    x[..., 3:] = 1.0
    e = sobel_edges(x)
    # at columns 2 and 3 the kernel straddles the step: gx = (1+2+1) * 2 = 8
    assert torch.allclose(e[0, 0, 2, 2], torch.tensor(8.0), atol=1e-4)
    assert torch.allclose(e[0, 0, 2, 0], torch.tensor(1e-3), atol=1e-4)  # flat: sqrt(1e-6)


def test_edge_loss_zero_for_identical_batches_and_small_between_real_batches():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(16, 3, 16, 16, generator=g) * 2 - 1
    assert edge_loss_batch(a, a).item() == 0
    assert edge_loss_literal(a, a).item() == 0
    # two halves of one "real" distribution vs a flat generator output
    real = torch.rand(64, 3, 16, 16, generator=g) * 2 - 1
    flat = torch.zeros(32, 3, 16, 16)
    assert edge_loss_batch(real[:32], real[32:]) < 0.05 * edge_loss_batch(flat, real[32:])


def test_literal_edge_loss_sends_no_gradient_to_d(tiny_npz):
    from fewgan.variants import build_variant

    cfg = tiny_config(tiny_npz, **{"reg.edge_weight": 1.0, "reg.edge_mode": "literal"})
    v = build_variant(cfg)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    fake = v.G(v.G.latent.draw(8))
    term = edge_loss_literal(fake, x)
    grads = torch.autograd.grad(term, list(v.D.parameters()) + list(v.G.parameters()), allow_unused=True)
    n_d = len(list(v.D.parameters()))
    assert all(g is None for g in grads[:n_d])  # D gets nothing: the term cannot "slow D"
    assert any(g is not None and g.abs().sum() > 0 for g in grads[n_d:])


def test_edge_maps_as_d_input(tiny_npz, tmp_path):
    tr = Trainer(tiny_config(tiny_npz, **{"reg.edge_d_input": True, "reg.edge_weight": 0.5, "train.steps": 1}),
                 tmp_path / "r")
    assert tr.variant.D.features[0].in_channels == 4
    tr.run()


def test_fd_search_stops_at_first_stable_fd():
    calls = []

    def fake_run(fd, seed):
        calls.append((fd, seed))
        e = 40
        if fd == 1:  # D saturates in the window
            return RunEvidence(fd, seed, [0.5] * 30 + [0.05] * 10, [2.0] * e, [1.0] * 10)
        if fd == 2 and seed == 1:  # collapse in one seed only
            return RunEvidence(fd, seed, [0.5] * e, [2.0] * e, [1.0] * 9 + [0.1])
        return RunEvidence(fd, seed, [0.5] * e, [2.0] * e, [1.0] * 10)

    res = search(fake_run, seeds=[0, 1], fd_max=8, window_start=31, log=lambda *a: None)
    assert res["chosen_fd"] == 3
    assert calls == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]  # nothing after the first stable FD
    fired = res["tried"][0]["runs"][0]["fired"]
    assert fired and fired[0].startswith("(b)")
    assert res["tried"][1]["runs"][1]["fired"][0].startswith("(e)")


def test_instability_criteria_individually():
    w = 31
    base = dict(fd=1, seed=0, epoch_ld=[0.6] * 40, epoch_lg=[2.0] * 40, diversity_ratio=[1.0] * 10)
    assert instability(RunEvidence(**base), w) == ([], 0)
    ev = RunEvidence(**{**base, "epoch_lg": [2.0] * 30 + [6, 6, 2, 6, 6, 6, 2, 2, 2, 2]})
    assert any(f.startswith("(c)") for f in instability(ev, w)[0])
    ev = RunEvidence(**{**base, "epoch_lg": [2.0] * 30 + [0.5, 4.0] * 5})
    assert any(f.startswith("(d)") for f in instability(ev, w)[0])
    ev = RunEvidence(**{**base, "epoch_ld": [0.6] * 30 + [0.05, 0.05, 0.6] * 3 + [0.6]})
    assert instability(ev, w)[0] == []  # only 2 consecutive saturated epochs
    ev = RunEvidence(**{**base, "epoch_lg": [2.0] * 35 + [float("nan")] * 5})
    assert instability(ev, w)[0][0].startswith("(a)")
    assert Criteria().consecutive == 3


def test_song_presets_load():
    s = config_mod.load_preset("song2023")
    assert (s.latent.kind, s.latent.mean_rescale, s.reg.edge_weight, s.reg.edge_mode) == ("cft", True, 1.0, "batch")
    lit = config_mod.load_preset("song2023-literal")
    assert (lit.train.lr_g, lit.train.lr_d, lit.train.batch_size, lit.reg.edge_mode) == (0.01, 0.01, 32, "literal")
    assert config_mod.load_preset("deligan").latent.kind == "deligan"
    assert config_mod.load_preset("dcgan-cft").latent.kind == "cft"
    assert config_mod.load_preset("dcgan-mr").latent.mean_rescale
    assert config_mod.load_preset("dcgan-edge").reg.edge_weight == 1.0


def test_train_for_search_collects_evidence(tiny_npz, tmp_path):
    from fewgan.fdsearch import train_for_search

    base = tiny_config(tiny_npz, **{"latent.kind": "cft"})
    ev = train_for_search(base, fd=2, seed=0, epochs=3, window_start=2, out_dir=tmp_path)
    assert len(ev.epoch_ld) == 3 and len(ev.epoch_lg) == 3 and len(ev.diversity_ratio) == 2
    assert all(r > 0 for r in ev.diversity_ratio) and not ev.nonfinite
    again = train_for_search(base, fd=2, seed=0, epochs=3, window_start=2, out_dir=tmp_path)
    assert again.epoch_ld == ev.epoch_ld  # a finished (FD, seed) is read back, not retrained
