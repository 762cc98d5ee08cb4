import csv

import pytest
import yaml

from fewgan.config import ConfigError
from fewgan.experiments.runner import run_experiment
from fewgan.experiments.spec import load_spec

SMALL = {"data.resolution": 16, "model.g_width": 8, "model.d_width": 8, "model.nz": 16,
         "train.batch_size": 8, "log.sample_every": 2, "log.ckpt_every": 0, "log.n_fixed": 4}


def _spec(tmp_path, tiny_npz, **extra):
    d = {"name": "t", "presets": ["dcgan", "sngan"], "data": [str(tiny_npz)], "seeds": [0, 1], "steps": 2,
         "overrides": SMALL, "eval": {"n": 24, "kid_subset": 8, "n_boot": 2}, **extra}
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_spec_expands_grid(tmp_path, tiny_npz):
    spec = load_spec(_spec(tmp_path, tiny_npz, grid={"train.fast": [False, True]}))
    jobs = spec.jobs()
    assert len(jobs) == 2 * 2 * 2
    assert {j.variant for j in jobs} == {"dcgan[train.fast=false]", "dcgan[train.fast=true]",
                                         "sngan[train.fast=false]", "sngan[train.fast=true]"}
    assert all(j.cfg.train.steps == 2 for j in jobs)  # one budget for all
    assert len({j.run for j in jobs}) == len(jobs)


def test_spec_errors(tmp_path, tiny_npz):
    with pytest.raises(ConfigError, match="unknown key.*presetz"):
        load_spec(_spec(tmp_path, tiny_npz, presetz=[1]))
    with pytest.raises(ConfigError, match="train.lr_x"):
        load_spec(_spec(tmp_path, tiny_npz, overrides={"train.lr_x": 1}))
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_spec(_spec(tmp_path, tiny_npz, presets=["nope"]))


def test_experiment_runs_aggregates_and_resumes(tmp_path, tiny_npz, monkeypatch):
    monkeypatch.setenv("FEWGAN_CACHE", str(tmp_path / "cache"))
    spec = _spec(tmp_path, tiny_npz)
    out = run_experiment(spec, tmp_path / "exp", log=lambda *a: None)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 4 and {r["variant"] for r in rows} == {"dcgan", "sngan"}
    assert all(float(r["fd"]) >= 0 and r["backbone"] == "effnet-lite0" for r in rows)
    summary = (out / "summary.md").read_text()
    assert "| dcgan | 2 |" in summary and "±" in summary
    assert all(float(r["train_s"]) > 0 for r in rows) and "train min" in summary
    assert all(float(r["sharpness_ratio"]) > 0 for r in rows)  # the pixel-space blur measure is recorded
    # a rerun skips finished runs (their done.json and stats stay untouched)
    stamp = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/stats.jsonl")}
    # an interrupted run (no done.json) is resumed from its checkpoint, not restarted
    victim = next(out.glob("runs/sngan*s1"))
    (victim / "done.json").unlink()
    run_experiment(spec, tmp_path / "exp", log=lambda *a: None)
    for p, t in stamp.items():
        if victim not in p.parents:
            assert p.stat().st_mtime_ns == t
    assert (victim / "done.json").is_file()
    assert len((victim / "stats.jsonl").read_text().splitlines()) == 2


def test_changed_spec_is_refused(tmp_path, tiny_npz, monkeypatch):
    monkeypatch.setenv("FEWGAN_CACHE", str(tmp_path / "cache"))
    spec = _spec(tmp_path, tiny_npz, seeds=[0], presets=["dcgan"])
    run_experiment(spec, tmp_path / "exp", log=lambda *a: None)
    spec.write_text("# a new comment\n" + spec.read_text())  # same spec: resumes, and the copy follows
    run_experiment(spec, tmp_path / "exp", log=lambda *a: None)
    assert (tmp_path / "exp" / "spec.yaml").read_text() == spec.read_text()
    spec.write_text(spec.read_text().replace("steps: 2", "steps: 3"))
    with pytest.raises(ConfigError, match="different spec"):
        run_experiment(spec, tmp_path / "exp", log=lambda *a: None)


def test_seed_major_order(tmp_path, tiny_npz):
    spec = load_spec(_spec(tmp_path, tiny_npz, seed_major=True))
    assert [j.seed for j in spec.jobs()] == [0, 0, 1, 1]
    assert [j.variant for j in spec.jobs()] == ["dcgan", "sngan", "dcgan", "sngan"]


def test_only_selects_part_of_the_grid(tmp_path, tiny_npz):
    from fewgan.experiments.spec import select

    jobs = load_spec(_spec(tmp_path, tiny_npz, grid={"train.fast": [False, True]})).jobs()
    assert {(j.variant, j.seed) for j in select(jobs, ["preset=sngan", "seed=1"])} == {
        ("sngan[train.fast=false]", 1), ("sngan[train.fast=true]", 1)}
    # the same key twice: either value; a shell pattern on the variant
    assert len(select(jobs, ["seed=0", "seed=1"])) == len(jobs)
    assert {j.variant for j in select(jobs, ["variant=*fast=true*"])} == {"dcgan[train.fast=true]",
                                                                          "sngan[train.fast=true]"}
    with pytest.raises(ConfigError, match="matches no run.*preset: dcgan, sngan"):
        select(jobs, ["preset=began"])
    with pytest.raises(ConfigError, match="KEY=PATTERN"):
        select(jobs, ["colour=red"])


def test_experiment_only_runs_the_selection_and_tables_the_finished(tmp_path, tiny_npz, monkeypatch):
    monkeypatch.setenv("FEWGAN_CACHE", str(tmp_path / "cache"))
    spec = _spec(tmp_path, tiny_npz, seeds=[0])
    out = run_experiment(spec, tmp_path / "exp", log=lambda *a: None, only=["preset=sngan"])
    assert sorted(p.parent.name for p in (out / "runs").glob("*/done.json")) == [f"sngan__{tiny_npz.stem}__s0"]
    run_experiment(spec, tmp_path / "exp", log=lambda *a: None)  # the rest later, same folder
    with open(out / "results.csv") as f:
        assert sorted(r["variant"] for r in csv.DictReader(f)) == ["dcgan", "sngan"]


def test_train_seconds_sums_iterations_without_eval_gaps(tmp_path):
    """train_s = sum of batch * d_updates / img_per_s over the logged iterations (the loop's own
    definition of img_per_s), read from stats.jsonl or its gzipped copy; evaluation pauses
    between iterations (visible in `time`) do not count."""
    import gzip
    import json

    from fewgan.experiments.runner import iteration_seconds, train_seconds

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"train": {"batch_size": 8}}))
    recs = [{"step": 1, "d_updates": 1, "img_per_s": 4.0, "time": 0.0},     # 2 s
            {"step": 2, "d_updates": 2, "img_per_s": 8.0, "time": 500.0},   # 2 s (an eval before it)
            {"step": 3, "d_updates": 0, "img_per_s": 16.0, "time": 501.0}]  # G-only: counted as 1 batch
    assert iteration_seconds(recs[1], 8) == pytest.approx(2.0)
    with gzip.open(tmp_path / "stats.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in recs))
    assert train_seconds(tmp_path) == pytest.approx(4.5)
    (tmp_path / "stats.jsonl").write_text(json.dumps(recs[0]) + "\n")  # the plain file wins
    assert train_seconds(tmp_path) == pytest.approx(2.0)
    assert train_seconds(tmp_path / "missing") is None


def test_tables_list_variants_in_natural_order(tmp_path):
    """g_steps=2 comes before g_steps=10 in results.csv and summary.md (not string order)."""
    import json

    from fewgan.experiments.runner import METRICS, write_tables

    for g in (10, 2, 1):
        run = tmp_path / "runs" / f"dcgan-g={g}__cat__s0"
        run.mkdir(parents=True)
        row = {"data": "cat", "variant": f"dcgan[g={g}]", "seed": 0, "step": 4, "backbone": "effnet-lite0",
               "n_gen": 10, "n_real": 10, **{m: float(g) for m in METRICS}, "img_per_s": 1.0, "train_s": 60.0}
        (run / "done.json").write_text(json.dumps(row))
    write_tables(tmp_path)
    with open(tmp_path / "results.csv") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["dcgan[g=1]", "dcgan[g=2]", "dcgan[g=10]"]
    md = (tmp_path / "summary.md").read_text()
    assert md.index("dcgan[g=2]") < md.index("dcgan[g=10]")


def test_tables_carry_the_holdout_backbone_and_leak_columns(tmp_path):
    import csv
    import json

    from fewgan.experiments.runner import check_metrics, write_tables

    for i, (variant, seed, fd_h) in enumerate([("a", 0, 10.0), ("a", 1, 12.0), ("b", 0, 20.0)]):
        row = {"run": f"r{i}", "variant": variant, "data": "d", "seed": seed, "step": 5, "fd": 1.0, "kid": 0.1,
               "backbone": "effnet-lite0", "n_gen": 10, "n_real": 30, "train_s": 60.0,
               "fd_holdout": fd_h, "kid_holdout": 0.2, "fd_floor": 8.0, "kid_floor": 0.05, "n_holdout": 10,
               "extra_backbones": "effnet-lite2", "fd_lite2": 3.0, "recall_lite2": 0.5,
               "leak_cutout": 0.25, "leak_cutout_real": 0.0}
        (tmp_path / "runs" / f"r{i}").mkdir(parents=True)
        (tmp_path / "runs" / f"r{i}" / "done.json").write_text(json.dumps(row))
    assert check_metrics(row) == ["fd_holdout", "kid_holdout", "fd_floor", "kid_floor", "n_holdout",
                                  "fd_lite2", "recall_lite2", "leak_cutout", "leak_cutout_real"]
    write_tables(tmp_path)
    cols = next(csv.reader(open(tmp_path / "results.csv")))
    assert {"fd_holdout", "fd_floor", "fd_lite2", "leak_cutout", "leak_cutout_real"} <= set(cols)
    summary = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert float(summary[0]["fd_holdout_mean"]) == 11.0 and float(summary[0]["fd_lite2_mean"]) == 3.0
    md = (tmp_path / "summary.md").read_text()
    assert "| fd_holdout | kid_holdout | fd_floor | kid_floor | fd_lite2 | recall_lite2 | leak_cutout |" in md
    assert "| a | 11.00 ± 1.41 |" in md and "0.250 ± 0.000 (0.000)" in md


def test_compare_knows_the_new_metrics():
    from fewgan.compare import LOWER_IS_BETTER

    assert LOWER_IS_BETTER["fd_holdout"] and LOWER_IS_BETTER["fd_lite2"] and LOWER_IS_BETTER["leak_cutout"]
    assert LOWER_IS_BETTER["recall_lite2"] is False and LOWER_IS_BETTER["fd_floor"]
