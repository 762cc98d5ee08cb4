"""`fewgan compare`: relative changes, per-seed pairing and stability from a synthetic experiment."""

import csv
import json
import math

import pytest
from typer.testing import CliRunner

from fewgan.cli import app
from fewgan.compare import compare_experiment, mean_std, paired_changes, relative_change, second_half_stability


def test_pure_helpers():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([5.0]) == (5.0, 0.0)
    assert all(math.isnan(x) for x in mean_std([]))
    assert relative_change(90.0, 100.0) == pytest.approx(-10.0)
    assert math.isnan(relative_change(1.0, 0.0))
    assert paired_changes({0: 50.0, 1: 150.0, 2: 9.0}, {0: 100.0, 1: 100.0}) == [pytest.approx(-50.0), pytest.approx(50.0)]
    stats = [{"loss_d": 9.0, "loss_g": 9.0, "log_ratio": 9.0}] * 2 + [
        {"loss_d": 1.0, "loss_g": 2.0, "log_ratio": math.log(2)}, {"loss_d": 3.0, "loss_g": 2.0, "log_ratio": math.log(2 / 3)}]
    st = second_half_stability(stats)
    assert st["loss_d_std"] == pytest.approx(1.0) and st["loss_g_std"] == pytest.approx(0.0)
    assert st["loss_d_mean"] == pytest.approx(2.0)
    assert st["log_ratio_mean"] == pytest.approx((math.log(2) + math.log(2 / 3)) / 2)


@pytest.fixture
def exp(tmp_path):
    rows = []
    for v, fd in (("dcgan", [100.0, 120.0]), ("better", [80.0, 90.0])):
        for seed, x in enumerate(fd):
            name = f"{v}__d__s{seed}"
            rows.append({"run": name, "variant": v, "data": "d", "seed": seed, "fd": x, "is": 2.0})
            run = tmp_path / "runs" / name
            run.mkdir(parents=True)
            with open(run / "stats.jsonl", "w") as f:
                for i in range(4):
                    f.write(json.dumps({"step": i + 1, "loss_d": 1.0 + i % 2, "loss_g": 2.0, "log_ratio": 0.5}) + "\n")
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_compare_experiment_table(exp):
    md = compare_experiment(exp, "dcgan", metrics=("fd", "is"))
    # means 85 vs 110: -22.7 %; per seed -20 % and -25 %: -22.5 ± 3.5 %; both seeds better
    assert "| better | fd | 85.00 ± 7.07 (2 seeds) | -22.7 % | -22.5 ± 3.5 % | 2/2 |" in md
    assert "| better | is | 2.00 ± 0.00 (2 seeds) | 0.0 % | 0.0 ± 0.0 % | 0/2 |" in md
    assert "| dcgan | 0.50 ± 0.00 | 0.00 ± 0.00 | 1.50 ± 0.00 | 2.00 ± 0.00 | 0.50 ± 0.00 |" in md
    with pytest.raises(ValueError, match="baseline 'nope' is not a variant.*dcgan, better"):
        compare_experiment(exp, "nope")
    with pytest.raises(ValueError, match="unknown metric"):
        compare_experiment(exp, "dcgan", metrics=("fid",))


def test_compare_cli_writes_markdown(exp):
    r = CliRunner().invoke(app, ["compare", str(exp), "--baseline", "dcgan", "-m", "fd", "-o", str(exp / "compare.md")])
    assert r.exit_code == 0, r.output
    assert "-22.7 %" in (exp / "compare.md").read_text()
    r = CliRunner().invoke(app, ["compare", str(exp / "missing"), "--baseline", "dcgan"])
    assert r.exit_code == 2 and "results.csv: no such file" in r.output


def test_compare_with_a_second_experiment_holding_the_baseline(exp, tmp_path_factory):
    other = tmp_path_factory.mktemp("ablation")
    rows = [{"run": f"alone__d__s{s}", "variant": "alone", "data": "d", "seed": s, "fd": 110.0, "is": 2.0} for s in (0, 1)]
    for r in rows:
        (other / "runs" / r["run"]).mkdir(parents=True)
        (other / "runs" / r["run"] / "stats.jsonl").write_text(json.dumps({"step": 1, "loss_d": 1.0, "loss_g": 1.0}) + "\n")
    with open(other / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ValueError, match="baseline 'dcgan' is not a variant"):
        compare_experiment(other, "dcgan")
    md = compare_experiment(other, "dcgan", metrics=("fd",), with_exps=[exp])
    # alone: 110 vs dcgan mean 110 -> 0 %; per seed: +10 %, -8.33 %
    assert "| alone | fd | 110.00 ± 0.00 (2 seeds) | 0.0 % |" in md and "1/2 |" in md
    with pytest.raises(ValueError, match="is in both"):
        compare_experiment(exp, "dcgan", with_exps=[exp])
    r = CliRunner().invoke(app, ["compare", str(other), "-b", "dcgan", "--with", str(exp), "-m", "fd"])
    assert r.exit_code == 0 and "| alone | fd |" in r.output


def test_is_better_follows_each_metric_direction():
    from fewgan.compare import is_better

    assert is_better(90.0, 100.0, True) and not is_better(110.0, 100.0, True)
    assert is_better(2.5, 2.0, False) and not is_better(math.nan, 2.0, False)
    # sharpness_ratio: the nearer to the data's 1, on a log scale, the better (0.8 beats 1.3; 1.2 beats 0.8)
    assert is_better(0.8, 1.3, None) and is_better(1.2, 0.8, None) and not is_better(0.5, 1.5, None)


def test_steps_to_reach_is_the_first_evaluation_at_or_below():
    from fewgan.compare import steps_to_reach

    curve = [(750, 160.0), (250, 300.0), (500, 150.0), (1000, 120.0)]  # any order
    assert steps_to_reach(curve, 155.0) == 500
    assert steps_to_reach(curve, 150.0) == 500  # at the value counts
    assert steps_to_reach(curve, 100.0) is None
    assert steps_to_reach([(2, math.nan), (4, 10.0)], 50.0) == 4


def test_compare_reach_counts_iterations_and_minutes(tmp_path):
    """--reach baseline: iterations (and training minutes) each run needs to reach the baseline's mean final FD."""
    curves = {("bn", 0): [120.0, 120.0], ("bn", 1): [128.0, 130.0],   # final 120, 130 (125); best 120, 128 (124)
              ("mn", 0): [124.0, 110.0], ("mn", 1): [126.0, 125.0]}   # reach at 2 and 4
    rows = []
    for (v, seed), fds in curves.items():
        name = f"{v}__d__s{seed}"
        rows.append({"run": name, "variant": v, "data": "d", "seed": seed, "fd": fds[-1]})
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("train:\n  batch_size: 8\n")
        with open(run / "stats.jsonl", "w") as f:  # 4 iterations of 6 s each (8 images at 8/6 img/s)
            for i in range(1, 5):
                f.write(json.dumps({"step": i, "loss_d": 1.0, "loss_g": 1.0, "img_per_s": 8 / 6.0}) + "\n")
        with open(run / "metrics.jsonl", "w") as f:
            for step, fd in zip((2, 4), fds):
                f.write(json.dumps({"step": step, "fd": fd}) + "\n")
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    md = compare_experiment(tmp_path, "bn", metrics=("fd",), reach="baseline")
    assert "FD ≤ 125.00 (bn's mean final FD)" in md
    # mn: seed 0 at 2 iterations (12 s), seed 1 at 4 (24 s): 3 ± 1.4 iterations, 0.3 ± 0.1 min
    assert "| mn | 2/2 | 3 ± 1 | 0.3 ± 0.1 | s0: 2, s1: 4 |" in md
    assert "| bn | 1/2 | 2 ± 0 | 0.2 ± 0.0 | s0: 2, s1: – |" in md
    md = compare_experiment(tmp_path, "bn", metrics=("fd",), reach="baseline-best")
    assert "FD ≤ 124.00 (bn's mean best FD over training)" in md
    assert "| mn | 1/2 | 2 ± 0 | 0.2 ± 0.0 | s0: 2, s1: – |" in md
    md = compare_experiment(tmp_path, "bn", metrics=("fd",), reach=111.0)
    assert "| mn | 1/2 | 4 ± 0 | 0.4 ± 0.0 | s0: 4, s1: – |" in md
    r = CliRunner().invoke(app, ["compare", str(tmp_path), "-b", "bn", "--reach", "soon"])
    assert r.exit_code == 2 and "--reach 'soon'" in r.output
