"""analysis.table: THE metric table (direction, digits, label) and mean ± std over seeds."""

from __future__ import annotations

import math

import pytest

from fewgan.analysis import table
from fewgan.data import ImageData, split_holdout
from fewgan.metrics import evaluate as ev

from test_holdout import blobs


def test_mean_std_of_known_numbers():
    mean, std = table.mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))  # sample std (ddof=1)
    assert table.mean_std([7.5]) == (7.5, 0.0)  # a single seed: std 0
    assert table.mean_std([2.0, None, math.nan, 4.0]) == (3.0, pytest.approx(math.sqrt(2)))  # missing skipped
    assert table.mean_std([]) == (None, 0.0) and table.mean_std([None, math.nan]) == (None, 0.0)


def test_formatting_by_digits():
    assert table.fmt("fd", 262.89420073623666) == "262.89"
    assert table.fmt("kid", 0.0123456) == "0.0123"
    assert table.fmt("fd_ci", [1.234, 5.678]) == "[1.23, 5.68]"
    assert table.fmt("backbone", "effnet-lite0") == "effnet-lite0" and table.fmt("fd", None) == "–"
    assert table.fmt_pm("recall", 0.5, 0.0) == "0.500 ± 0.000" and table.fmt_pm("fd", None, 0.0) == ""


def test_direction_of_suffixed_and_leak_keys():
    assert table.direction("fd") == "lower" and table.direction("is") == "higher"
    assert table.direction("fd_lite2") == "lower" and table.direction("recall_lite2") == "higher"
    assert table.direction("kid_holdout_inception") == "lower"
    assert table.direction("recall_f2") == "higher"  # any backbone suffix inherits its base entry
    assert table.metric("fd_holdout_f2").digits == 2 and table.digits("kid_floor_f2") == 4
    assert table.direction("leak_cutout") == table.direction("leak_rot_real") == "lower"
    assert table.direction("sharpness_ratio") == "ratio" and table.direction("n_holdout") == "none"
    assert table.direction("no_such_metric") is None
    assert table.label("fd_lite2") == "FD (lite2)"


def test_generated_backbone_entries_and_column_lists():
    assert table.backbone_keys("lite2") == tuple(f"{b}_lite2" for b in table.BACKBONE_BASE)
    for sfx in table.BACKBONE_SUFFIXES:
        assert all(k in table.TABLE for k in table.backbone_keys(sfx))
    assert set(table.BACKBONE_SUFFIXES) == set(ev._SUFFIXES.values())  # the backbones evaluate knows
    for k in table.SUMMARY + table.HOLDOUT + table.LEAKS:
        assert k in table.TABLE, k
    assert table.LEAKS == tuple(f"leak_{k}{t}" for k in ("cutout", "border", "flip", "rot") for t in ("", "_real"))


def test_every_key_an_evaluation_writes_has_an_entry(fake_backbone):
    """All of evaluate_images' keys (held-out, an extra backbone, leaks, pixel measures, intervals)."""
    data = ImageData(x=blobs(200, 0), source="blobs")
    train, held = split_holdout(data, 0.2, seed=0)
    s = ev.EvalSettings(backbone="fake", backbones=("effnet-lite2",), n_boot=5, kid_subsets=5, kid_subset=50,
                        ndb_cells=5)
    rec = {"step": 10, **ev.evaluate_images(blobs(100, 2), train, s, holdout=held)}
    assert "fd_lite2" in rec and "fd_holdout" in rec and "leak_cutout_real" in rec and "spec_high" in rec
    missing = [k for k in rec if table.metric(k) is None]
    assert not missing, f"keys without a metric-table entry: {missing}"
    assert all(table.metric(k).name == k for k in rec)
    shown = table.display_keys(rec, ["lite2"])
    assert shown[:3] == ["fd", "fd_ci", "kid"] and "fd_lite2" in shown and shown[-1] == "time_s"
    assert "backbone" not in shown and "kid_subset" not in shown
