import pytest
import numpy as np
from PIL import Image
from typer.testing import CliRunner

from fewgan.cli import app

runner = CliRunner()
SMALL = ["--resolution", "16", "--model.g_width=8", "--model.d_width=8", "--train.batch_size=8",
         "--log.progress=false", "--log.sample_every=0", "--log.ckpt_every=0"]


def test_train_sample_resume(tiny_npz, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "2", "--out", str(out), *SMALL])
    assert r.exit_code == 0, r.output
    assert (out / "samples" / "final.png").is_file()
    r = runner.invoke(app, ["train", "--resume", "--out", str(out), "--steps", "3", "--log.progress=false"])
    assert r.exit_code == 0, r.output
    assert len((out / "stats.jsonl").read_text().splitlines()) == 3
    r = runner.invoke(app, ["sample", str(out), "-n", "5", "-o", str(tmp_path / "s.npz")])
    assert r.exit_code == 0, r.output
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (5, 16, 16, 3) and x.dtype == np.uint8
    r = runner.invoke(app, ["sample", str(out), "-n", "4", "-o", str(tmp_path / "grid.png")])
    assert r.exit_code == 0 and Image.open(tmp_path / "grid.png").size == (2 * 18 + 2, 2 * 18 + 2)
    r = runner.invoke(app, ["sample", str(out), "-n", "3", "-o", str(tmp_path / "pngs")])
    assert r.exit_code == 0 and len(list((tmp_path / "pngs").glob("*.png"))) == 3


def test_resume_refuses_changing_the_model(tiny_npz, tmp_path):
    out = tmp_path / "run"
    runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), *SMALL])
    r = runner.invoke(app, ["train", "--resume", "--out", str(out), "--train.lr_g=1"])
    assert r.exit_code == 2 and "train.lr_g" in r.output


def test_train_on_png_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "imgs"), "--steps", "1", "--out", str(tmp_path / "r"), *SMALL])
    assert r.exit_code == 0, r.output


def test_bad_override_is_a_clear_error(tiny_npz, tmp_path):
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--out", str(tmp_path / "r"), "--train.lr_x=1"])
    assert r.exit_code == 2 and "train.lr_x" in r.output and "lr_d" in r.output
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "nothing.npz"), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "nothing.npz" in r.output


def test_existing_run_refused(tiny_npz, tmp_path):
    out = tmp_path / "run"
    runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), *SMALL])
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), *SMALL])
    assert r.exit_code == 2 and "--resume" in r.output


def test_sample_bad_checkpoint(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    r = runner.invoke(app, ["sample", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 2 and "x.safetensors" in r.output


def test_data_info(tiny_npz):
    r = runner.invoke(app, ["data", "info", "emoji"])
    assert r.exit_code == 0, r.output
    assert "694" in r.output and "positive" in r.output
    r = runner.invoke(app, ["data", "info", str(tiny_npz)])
    assert r.exit_code == 0 and "40" in r.output


def test_presets_listed():
    r = runner.invoke(app, ["presets"])
    assert r.exit_code == 0 and "sngan" in r.output and "mlp-gan" in r.output


def test_eval_run_and_training_set_as_generated(tiny_npz, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("FEWGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), *SMALL])
    r = runner.invoke(app, ["eval", str(out), "-n", "24", "--n-boot", "2"])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["backbone"] == "effnet-lite0" and rec["n_gen"] == 24 and rec["n_real"] == 40 and rec["resolution"] == 16
    assert (out / "eval" / "nearest_neighbours.png").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    # the training set itself, evaluated as if generated: every sample is a copy
    r = runner.invoke(app, ["eval", str(tiny_npz), "--data", str(tiny_npz), "-r", "16", "--n-boot", "0",
                            "-o", str(tmp_path / "copies")])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "copies" / "metrics.json").read_text())
    assert rec["near_copy_fraction"] == 1.0 and abs(rec["fd"]) < 1e-3
    assert rec["sharpness_ratio"] == pytest.approx(1.0)  # the data is exactly as sharp as itself


def test_eval_run_with_holdout_and_extra_backbone(tiny_npz, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("FEWGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), *SMALL,
                            "--data.holdout=0.25"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", str(out), "-n", "24", "--n-boot", "0", "--backbones", "effnet-lite2"])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["n_real"] == 30 and rec["n_holdout"] == 10  # 40 images, 2 classes, 25 % held out per class
    for k in ("fd_holdout", "kid_holdout", "fd_floor", "kid_floor", "fd_lite2", "kid_lite2", "fd_holdout_lite2",
              "fd_floor_lite2", "leak_cutout", "leak_cutout_real"):
        assert k in rec, k
    assert rec["extra_backbones"] == ["effnet-lite2"]
    assert "fd_holdout" in r.output and "fd_lite2" in r.output
