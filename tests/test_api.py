"""The Python API (fewgan.train / load / sample / evaluate) and the library pieces the CLI calls."""

import json

import pytest
import torch

import fewgan
from fewgan import api
from fewgan.metrics import evaluate as ev

SMALL = dict(data__resolution=16, model__g_width=8, model__d_width=8, model__nz=16, train__batch_size=8,
             log__progress=False, log__sample_every=0, log__ckpt_every=0, log__n_fixed=8)


def test_train_load_sample_and_resume(tiny_npz, tmp_path):
    run = tmp_path / "run"
    r = fewgan.train("dcgan", data=tiny_npz, out=run, train__steps=2, **SMALL)
    assert r.step == 2 and r.run_dir == run and not r.interrupted
    gen = fewgan.load(run)
    assert gen.step == 2 and gen.cfg.data.resolution == 16 and gen.cfg.data.source == str(tiny_npz)
    a = gen.sample(5, seed=0)
    assert a.shape == (5, 3, 16, 16) and a.dtype == torch.uint8
    assert torch.equal(a, fewgan.sample(run, 5, seed=0))  # the same seed, the same images
    assert not torch.equal(a, gen.sample(5, seed=1))
    # resume: only the keys in RESUME_MUTABLE may change
    with pytest.raises(api.ResumeError, match="cannot change model.g_width"):
        fewgan.train(out=run, resume=True, model__g_width=16)
    r = fewgan.train(out=run, resume=True, train__steps=3)
    assert r.step == 3 and fewgan.load(run).step == 3
    assert len((run / "stats.jsonl").read_text().splitlines()) == 3


def test_resume_policy(tmp_path):
    with pytest.raises(api.ResumeError, match="not a run folder"):
        api.resume_config(tmp_path)
    with pytest.raises(api.ResumeError, match="needs out"):
        fewgan.train(resume=True)
    cfg = api.build_config("dcgan", {"train.steps": 7})
    run = tmp_path / "run"
    run.mkdir()
    from fewgan import config as config_mod

    config_mod.save_yaml(cfg, run / "config.yaml")
    assert api.resume_config(run, ["--train.steps=9", "--log.progress=false"]).train.steps == 9
    assert api.resume_config(run, {"train.device": "cpu"}).train.device == "cpu"
    with pytest.raises(api.ResumeError, match="cannot change data.source"):
        api.resume_config(run, {"data.source": "elsewhere.npz"})


def test_overrides_are_section__key_keywords():
    # a dict of dotted keys and command-line strings give the same config
    assert api.build_config("dcgan", {"train.lr_d": 4e-4}) == api.build_config("dcgan", ["--train.lr_d=4e-4"])
    assert api._kwargs_to_dict({"train__lr_d": 4e-4}) == {"train.lr_d": 4e-4}
    with pytest.raises(TypeError, match="section__key"):
        fewgan.train(lr=1.0)
    with pytest.raises(fewgan.config.ConfigError, match="unknown key train.nope"):
        fewgan.train(train__nope=1)
    with pytest.raises(fewgan.config.ConfigError, match="expected an integer"):
        fewgan.train(train__steps="many")


def test_evaluate_run_with_and_without_holdout(tiny_npz, tmp_path, fake_backbone):
    run = tmp_path / "run"
    fewgan.train(data=tiny_npz, out=run, train__steps=1, data__holdout=0.25, **SMALL)
    m = fewgan.evaluate(run, n=24, backbone="fake", n_boot=0)
    assert m["n_gen"] == 24 and m["n_real"] == 30 and m["n_holdout"] == 10  # stratified 25 % per class
    assert "fd_holdout" in m and json.loads((run / "metrics.json").read_text())["fd"] == m["fd"]
    full = fewgan.evaluate(run, n=24, backbone="fake", n_boot=0, holdout=False, out=tmp_path / "full")
    assert full["n_real"] == 40 and "n_holdout" not in full
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # the second went to `out`
    with pytest.raises(ValueError, match="not a run folder"):
        fewgan.evaluate(tiny_npz)


def test_evaluate_target_data_source_at_given_resolution_and_channels(tiny_npz, tmp_path, fake_backbone):
    assert not api.is_run_target(tiny_npz)
    res = api.evaluate_target(tiny_npz, data=tiny_npz, backbone="fake", n_boot=0, resolution=16, channels=1,
                              out=tmp_path / "copies", device="cpu")
    assert not res.is_run and res.out_dir == tmp_path / "copies"
    assert res.rec["resolution"] == 16 and res.rec["near_copy_fraction"] == 1.0 and abs(res.rec["fd"]) < 1e-6
    assert (tmp_path / "copies" / "metrics.json").is_file()
    with pytest.raises(ValueError, match="needs real data"):
        api.evaluate_target(tiny_npz)


def test_the_readme_example_runs(tiny_npz, tmp_path, monkeypatch, fake_backbone):
    """README "Python API", run as written but on tiny data, tiny nets, 1/100 of the steps and a stand-in backbone."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    real_train, real_evaluate = api.train, api.evaluate

    def small_train(preset="dcgan", data=None, out=None, resume=False, **kw):
        kw["train__steps"] = max(1, kw.get("train__steps", 100) // 100)
        if resume:
            return real_train(preset, out=out, resume=True, **kw)
        return real_train(preset, data=tiny_npz, out=out, **{**kw, **SMALL})

    monkeypatch.setattr(fewgan, "train", small_train)
    monkeypatch.setattr(fewgan, "evaluate", lambda run, n=1000, **kw: real_evaluate(run, n=24, backbone="fake",
                                                                                   n_boot=0, **kw))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["images"].shape == (16, 3, 16, 16) and "fd" in scope["m"]
    assert fewgan.load(tmp_path / "runs" / "demo").step == 4
