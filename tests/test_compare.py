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
