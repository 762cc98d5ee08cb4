"""The transitional conditional GAN (Shahbazi et al. 2022): unconditional first, labels faded in."""

import json

import pytest
import torch

from conftest import assert_resume_exact, tiny_config
from fewgan import config as config_mod
from fewgan.nets.conditional import ConditionalDCGANDiscriminator
from fewgan.sampling import load_for_sampling
from fewgan.training.loop import Trainer
from fewgan.variants.transitional import transition


def _cfg(src, **over):
    opts = {"model.conditional": True, "train.variant": "transitional", "model.spectral_norm": True,
            "model.transition_start": 2, "model.transition_end": 6, "train.steps": 8}
    opts.update(over)
    return tiny_config(src, **opts)


def test_transition_schedule_matches_its_definition():
    assert [transition(t, 2, 6) for t in range(8)] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1]
    assert [transition(t, 3, 3) for t in (2, 3, 4)] == [0, 1, 1]  # start == end: a step
    assert transition(0, 0, 0) == 1.0


def test_split_logits_sum_to_the_projection_logit():
    torch.manual_seed(0)
    d = ConditionalDCGANDiscriminator(3, channels=3, resolution=16, width=8, spectral_norm=True).eval()
    x, y = torch.randn(5, 3, 16, 16), torch.tensor([0, 1, 2, 1, 0])
    u, c = d.split_logits(x, y)
    assert u.shape == c.shape == (5,)
    torch.testing.assert_close(u + c, d(x, y))
    assert torch.equal(u, d.split_logits(x, (y + 1) % 3)[0])  # the unconditional head ignores y
    with pytest.raises(ValueError, match="projection"):
        ConditionalDCGANDiscriminator(3, resolution=16, width=8, mode="concat").split_logits(x, y)


def test_unconditional_phase_ignores_labels_then_labels_fade_in(tiny_npz, tmp_path):
    tr = Trainer(_cfg(tiny_npz), tmp_path / "r")
    v = tr.variant
    assert v.lam == 0.0 and v.G.net.label_scale == 0.0
    z = torch.randn(4, 16)
    v.G.eval()
    with torch.no_grad():  # lambda = 0: G is unconditional
        assert torch.equal(v.G(z, torch.zeros(4, dtype=torch.long)), v.G(z, torch.ones(4, dtype=torch.long)))
    v.G.train()
    emb_g = v.G.net.embed.weight.detach().clone()
    tr2 = Trainer(_cfg(tiny_npz, **{"train.steps": 2}), tmp_path / "r2")  # only the unconditional phase
    emb_g, emb_d = (tr2.variant.G.net.embed.weight.detach().clone(),
                    tr2.variant.D.embed.parametrizations.weight.original.detach().clone())
    tr2.run()
    # no gradient reaches either label embedding while lambda = 0 (Adam leaves them untouched)
    assert torch.equal(emb_g, tr2.variant.G.net.embed.weight)
    assert torch.equal(emb_d, tr2.variant.D.embed.parametrizations.weight.original)
    tr.run()
    stats = [json.loads(l) for l in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert [s["transition"] for s in stats] == [transition(t, 2, 6) for t in range(8)]
    assert all("loss_d_uncond" in s and "loss_d_cond" in s for s in stats)
    assert v.lam == 1.0 and v.G.net.label_scale == 1.0
    assert not torch.equal(emb_g, v.G.net.embed.weight)  # after the transition the labels are learnt


def test_d_loss_is_uncond_plus_lambda_times_cond(tiny_npz, tmp_path):
    tr = Trainer(_cfg(tiny_npz, **{"model.transition_start": 0, "model.transition_end": 4, "train.steps": 3}),
                 tmp_path / "r")
    tr.run()
    stats = [json.loads(l) for l in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    for s in stats:
        assert s["loss_d"] == pytest.approx(s["loss_d_uncond"] + s["transition"] * s["loss_d_cond"], rel=1e-5)
    assert [s["transition"] for s in stats] == [0, 0.25, 0.5]


def test_resume_equals_uninterrupted_and_checkpoint_restores_lambda(tiny_npz, tmp_path):
    a, b = assert_resume_exact(lambda n: _cfg(tiny_npz, **{"train.steps": n, "log.ckpt_every": 2}), tmp_path, steps=6)
    assert b.variant.lam == a.variant.lam == 1.0
    mid = load_for_sampling(tmp_path / "a" / "checkpoints" / "ckpt_00000004.safetensors")
    assert mid.variant.lam == 0.5 and mid.variant.G.net.label_scale == 0.5


def test_transitional_needs_a_projection_conditional_model(tiny_npz, tmp_path):
    with pytest.raises(ValueError, match="model.conditional=true"):
        Trainer(_cfg(tiny_npz, **{"model.conditional": False}), tmp_path / "a")
    with pytest.raises(ValueError, match="cond_mode"):
        Trainer(_cfg(tiny_npz, **{"model.cond_mode": "concat"}), tmp_path / "b")
    with pytest.raises(ValueError, match="transition_start"):
        Trainer(_cfg(tiny_npz, **{"model.transition_start": 5, "model.transition_end": 3}), tmp_path / "c")


def test_preset():
    c = config_mod.load_preset("cdcgan-transition")
    assert c.train.variant == "transitional" and c.model.conditional and c.model.spectral_norm
    assert (c.model.transition_start, c.model.transition_end) == (500, 1000)
