import csv
import json
import math
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from fewgan.experiments.spec import load_spec
from fewgan.report import _collect_runs, build_report, epoch_log_ratio, load_jsonl, moving_average

CONFIG = """\
preset: dcgan
data:
  source: emoji
  resolution: 32
model:
  arch: dcgan
loss:
  kind: bce
train:
  variant: standard
  steps: 60
  batch_size: 16
  d_steps: 1
  g_steps: 2
  lr_g: 0.0002
  lr_d: 0.0004
  seed: 0
log:
  sample_every: 20
"""


def _stats(n=60, epochs=3, offset=0.0):
    out = []
    for i in range(n):
        step = i + 1
        ld = 1.0 + 0.3 * math.sin(i / 5) + offset
        lg = 0.8 + 0.02 * i + offset
        rec = {
            "step": step, "epoch": i * epochs / n, "loss_d": ld, "loss_g": lg,
            "log_ratio": math.log(lg / ld), "d_real": 0.7, "d_fake": 0.3 + 0.001 * i,
            "grad_norm_d": 1.0 + i, "grad_norm_g": 0.5, "lr_g": 2e-4, "lr_d": 4e-4,
            "img_per_s": 100.0, "time": 0.1 * i, "k_t": 0.01 * i,
        }
        if i == 7:
            rec["log_ratio"] = None
        if i == 30:
            rec["warnings"] = ["D loss collapsed <0.01> & friends"]
        out.append(rec)
    return out


def _metrics(offset=0.0):
    out = []
    for k, step in enumerate((20, 40, 60)):
        fd = 100.0 - 20 * k + offset
        out.append({
            "step": step, "backbone": "effnet-lite0", "resolution": 32, "n_gen": 1000, "n_real": 694,
            "fd": fd, "fd_ci": [fd - 5, fd + 5] if k else None, "kid": 0.05, "kid_std": 0.01, "kid_ci": None,
            "is": 2.0 + k, "is_std": 0.1, "precision": 0.5, "recall": 0.4, "density": 0.9, "coverage": 0.6,
            "near_copy_fraction": 0.01 * k, "nn_ratio_median": 1.1, "time_s": 3.0,
        })
    return out


def _png(path: Path, color=(200, 50, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), color).save(path)


def _write_jsonl(path: Path, recs, blank_lines=False):
    lines = [json.dumps(r) for r in recs]
    if blank_lines:
        lines.insert(3, "")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def make_run(d: Path, offset=0.0, seed=0) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(CONFIG.replace("seed: 0", f"seed: {seed}"))
    _write_jsonl(d / "stats.jsonl", _stats(offset=offset), blank_lines=True)
    _write_jsonl(d / "metrics.jsonl", _metrics(offset))
    _png(d / "samples" / "step_00000020.png")
    _png(d / "samples" / "final.png", (50, 200, 50))
    return d


def _check_links(page: Path):
    out = page.parent
    html_text = page.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html_text)
    md_srcs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "report.md").read_text())
    for s in srcs + md_srcs:
        assert not s.startswith(("/", "http")), s
        assert (out / unquote(s)).is_file(), s
    assert "<script" not in html_text and "http" not in html_text.replace("http-equiv", "")
    return srcs, md_srcs


def test_load_jsonl_tolerant(tmp_path):
    assert load_jsonl(tmp_path / "missing.jsonl") == []
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\n\n   \n{"a": 2}\n{"a": 3, "b"')  # blank lines + half-written last line
    assert load_jsonl(p) == [{"a": 1}, {"a": 2}]


def test_epoch_log_ratio_matches_hand_computation():
    stats = [
        {"epoch": 0.0, "loss_g": 1.0, "loss_d": 2.0},
        {"epoch": 0.5, "loss_g": 3.0, "loss_d": 2.0},
        {"epoch": 1.0, "loss_g": 2.0, "loss_d": 1.0},
        {"epoch": 1.9, "loss_g": 4.0, "loss_d": 1.0, "log_ratio": None},
        {"epoch": 2.2, "loss_g": -1.0, "loss_d": 1.0},  # mean L_G <= 0: no ratio for epoch 2
        {"epoch": 3.0, "loss_g": None, "loss_d": 1.0},  # incomplete record: skipped
    ]
    got = epoch_log_ratio(stats)
    assert [e for e, _ in got] == [0, 1]
    assert got[0][1] == pytest.approx(math.log(2.0 / 2.0))
    assert got[1][1] == pytest.approx(math.log(3.0 / 1.0))

    # and on the synthetic run stats, against an independent computation
    st = _stats()
    got = dict(epoch_log_ratio(st))
    assert sorted(got) == [0, 1, 2]
    for e in range(3):
        recs = [r for r in st if math.floor(r["epoch"]) == e]
        mg = sum(r["loss_g"] for r in recs) / len(recs)
        md = sum(r["loss_d"] for r in recs) / len(recs)
        assert got[e] == pytest.approx(math.log(mg / md))


def test_moving_average_ignores_nan():
    y = moving_average([1.0, float("nan"), 3.0, 5.0], 3)
    assert y.tolist() == pytest.approx([1.0, 2.0, 4.0, 4.0])
    assert moving_average([2.0, 4.0], 1).tolist() == [2.0, 4.0]


def test_run_report(tmp_path):
    run = make_run(tmp_path / "run")
    page = build_report(run)
    assert page == run.resolve() / "report" / "index.html"
    assert page.is_file() and (page.parent / "report.md").is_file()
    srcs, md_srcs = _check_links(page)
    assert set(srcs) == set(md_srcs)
    text = page.read_text()
    md = (page.parent / "report.md").read_text()
    for needed in ("effnet-lite0", "Sample grids over time", "Warnings", "step 20", "final (step 60)",
                   "k_t", "fig_log_ratio.png", "fig_fd.png", "fig_other_signals.png", "preset dcgan"):
        assert needed in text, needed
    assert "1000 vs 694 samples, 32px" in text
    # warning text is escaped in HTML and listed with its step
    assert "step 31: D loss collapsed &lt;0.01&gt; &amp; friends" in text
    assert "<0.01>" not in text
    assert "no data yet" in text  # no eval/nearest_neighbours.png
    assert "## Evaluation metrics" in md and "| metric |" in md
    # per-epoch table holds the same numbers as epoch_log_ratio
    r0 = epoch_log_ratio(load_jsonl(run / "stats.jsonl"))[0][1]
    assert f"{r0:.4g}" in text


def test_run_report_custom_out_and_nearest_neighbours(tmp_path):
    run = make_run(tmp_path / "run")
    _png(run / "eval" / "nearest_neighbours.png")
    page = build_report(str(run), out=tmp_path / "elsewhere")
    assert page == (tmp_path / "elsewhere" / "index.html").resolve()
    _check_links(page)
    assert "eval_nearest_neighbours.png" in page.read_text()


def test_config_only_run(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    page = build_report(run)
    text = page.read_text()
    assert "no data yet" in text and "preset dcgan" in text
    _check_links(page)


def test_not_a_run_raises(tmp_path):
    d = tmp_path / "random_folder"
    d.mkdir()
    (d / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="random_folder"):
        build_report(d)
    with pytest.raises(ValueError, match="does_not_exist"):
        build_report(tmp_path / "does_not_exist")


def test_experiment_report(tmp_path):
    exp = tmp_path / "exp"
    (exp / "runs").mkdir(parents=True)
    (exp / "spec.yaml").write_text("name: tiny\nvariants: [base, smooth]\nseeds: [0, 1]\n")
    rows = []
    for vi, variant in enumerate(("base", "smooth")):
        for seed in (0, 1):
            name = f"{variant}-emoji-s{seed}"
            make_run(exp / "runs" / name, offset=0.1 * vi + 0.05 * seed, seed=seed)
            rows.append({"run": name, "variant": variant, "data": "emoji", "seed": seed, "step": 60,
                         "fd": 60.0 + 10 * vi + seed, "kid": 0.05, "precision": 0.5})
    with open(exp / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    # one run logged the collapse monitor's sample signals: the report plots them
    with open(exp / "runs" / "smooth-emoji-s0" / "stats.jsonl", "a") as f:
        for step, dup in ((100, 0.02), (200, 0.4)):
            f.write(json.dumps({"step": step, "mon_duplicates": dup, "mon_diversity": 0.8, "mon_ndb_k": 0.2}) + "\n")
    (exp / "summary.md").write_text("| variant | data | fd |\n|---|---|---|\n| base | emoji | 60.5 ± 0.7 |\n")
    (exp / "summary.csv").write_text("variant,data,fd\nbase,emoji,60.5 ± 0.7\nsmooth,emoji,70.5 ± 0.7\n")

    page = build_report(exp)
    out = page.parent
    assert page == exp.resolve() / "report" / "index.html"
    srcs, md_srcs = _check_links(page)
    text = page.read_text()
    md = (out / "report.md").read_text()
    assert "fig_final_fd.png" in text and "fig_curves_emoji.png" in text and "fig_fd_emoji.png" in text
    assert "fig_monitor_emoji.png" in text and "Monitor warnings" in text
    assert "fig_began_emoji.png" in text  # the runs logged k_t (BEGAN's control variable)
    assert "effnet-lite0" in text
    assert "<td>70.5 ± 0.7</td>" in text  # summary.csv rendered as a table
    assert "| base | emoji | 60.5 ± 0.7 |" in md  # summary.md embedded
    assert "name: tiny" in text
    assert sum(s.startswith("final_") for s in srcs) == 4  # gallery: one final grid per run
    for row in rows:
        sub = out / "runs" / row["run"] / "index.html"
        assert sub.is_file(), sub
        assert f'href="runs/{row["run"]}/index.html"' in text
        assert f"(runs/{row['run']}/report.md)" in md
        _check_links(sub)
        assert "../../index.html" in sub.read_text()


def test_warning_summary_gives_first_step_and_count_per_signal():
    from fewgan.report import warning_summary

    stats = [{"step": 1}, {"step": 300, "warnings": ["ndb fired at step 300: NDB/K 0.80 on 128 samples (> 0.6)"]},
             {"step": 301}, {"step": 600, "warnings": ["ndb fired at step 600: NDB/K 0.9", "saturation fired at step 600: x"]},
             {"step": 700, "warnings": "something else"}]
    assert warning_summary(stats) == {"ndb": (300, 2), "saturation": (600, 1), "something else": (700, 1)}
    assert warning_summary([{"step": 1}]) == {}


def test_natural_key_orders_numbers_by_value():
    from fewgan.report import natural_key

    names = ["dcgan-g=10-s0", "dcgan-g=2-s1", "dcgan-g=2-s0", "dcgan-g=1-s2", "began-g=4-s0"]
    assert sorted(names, key=natural_key) == ["began-g=4-s0", "dcgan-g=1-s2", "dcgan-g=2-s0", "dcgan-g=2-s1",
                                              "dcgan-g=10-s0"]


def test_unfinished_experiment_run_takes_its_labels_from_the_spec(tmp_path):
    """A run still training has no results.csv row: the report labels it as the spec does (variant
    and data label), not by its config's train.variant and data path, so it joins its data set."""
    exp = tmp_path / "exp"
    (exp / "runs").mkdir(parents=True)
    (exp / "spec.yaml").write_text(
        "name: tiny\npresets: [dcgan]\nseeds: [0]\nsteps: 60\n"
        "data:\n  - {source: some/dir/cifar10_1k.npz, resolution: 32, label: cifar}\n")
    job = load_spec(exp / "spec.yaml").jobs()[0]
    make_run(exp / "runs" / job.run)
    (run,) = _collect_runs(exp, [])
    assert (run.variant, run.data, run.seed) == ("dcgan", "cifar", "0")
    # without a usable spec the config's labels remain
    (exp / "spec.yaml").write_text("name: tiny\n")
    (run,) = _collect_runs(exp, [])
    assert run.data != "cifar"
