"""THE metric table: every key an evaluation record or a results row can hold, with its direction,
its printed digits and a short label; and mean ± std over seeds.

Every place that lists metrics or prints them for people (the experiment runner's results /
summary tables, ``fewgan compare``, the report, ``fewgan eval``'s printout) reads this table, so a
new metric is added here once. Numbers are rounded by ``digits`` only where people read them
(Markdown, the CLI); CSV and JSON keep full precision.

Directions: ``"lower"`` / ``"higher"`` is better; ``"ratio"``: a generated / real ratio, closer to
1 is better; ``"none"``: no better side (counts, intervals, bookkeeping). Keys of an extra
feature backbone carry its suffix (``fd_lite2``; see ``metrics.evaluate.backbone_suffix``) and
inherit their base entry; the suffixed entries of the known backbones are generated from
:data:`BACKBONE_BASE`, and :func:`metric` resolves any other suffix the same way.

Kept free of torch and matplotlib (``fewgan.metrics`` imports the networks' code): the runner and
``compare`` import it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import Iterable

__all__ = ["Metric", "TABLE", "SUMMARY", "HOLDOUT", "BACKBONE_BASE", "BACKBONE_SUFFIXES", "LEAKS",
           "DISPLAY_GROUPS", "metric", "direction", "digits", "label", "backbone_keys", "display_keys",
           "mean_std", "fmt", "fmt_pm"]

DIRECTIONS = ("lower", "higher", "ratio", "none")


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # lower | higher | ratio | none
    digits: int | None  # decimals when printed for people; None: not a number (a name, a list of names)
    label: str  # short column label
    group: str = "main"  # head | main | holdout | backbone | leak | pixel | detail | cost

    @property
    def comparable(self) -> bool:
        """Whether one value can be better than another (what `fewgan compare` accepts)."""
        return self.direction != "none"


def _m(name, direction, digits, label, group="main") -> Metric:
    assert direction in DIRECTIONS, name
    return Metric(name, direction, digits, label, group)


_BASE = [
    # the record's head: what the numbers are comparable under
    _m("step", "none", 0, "step", "head"),
    _m("generated", "none", None, "generated", "head"),
    _m("backbone", "none", None, "backbone", "head"),
    _m("resolution", "none", 0, "px", "head"),
    _m("n_gen", "none", 0, "n gen", "head"),
    _m("n_real", "none", 0, "n real", "head"),
    _m("data", "none", None, "data", "head"),
    _m("data_fingerprint", "none", None, "data fingerprint", "head"),
    _m("extra_backbones", "none", None, "extra backbones", "head"),
    # the headline metrics and their spreads, in the order `fewgan eval` prints them
    _m("fd", "lower", 2, "FD"),
    _m("fd_ci", "none", 2, "FD CI"),
    _m("kid", "lower", 4, "KID"),
    _m("kid_std", "none", 4, "KID std"),
    _m("kid_ci", "none", 4, "KID CI"),
    _m("is", "higher", 2, "IS"),
    _m("is_std", "none", 2, "IS std"),
    _m("precision", "higher", 3, "precision"),
    _m("recall", "higher", 3, "recall"),
    _m("density", "higher", 3, "density"),
    _m("coverage", "higher", 3, "coverage"),
    _m("ndb", "none", 0, "NDB"),
    _m("ndb_k", "lower", 3, "NDB/K"),
    _m("ndb_js", "lower", 3, "NDB JS"),
    _m("ndb_cells", "none", 0, "NDB cells"),
    _m("near_copy_fraction", "lower", 3, "near-copies"),
    _m("nn_ratio_median", "none", 3, "NN ratio median"),
    # held-out reals (fd_floor / kid_floor belong to the data split, the same for every variant:
    # "lower" only by convention, so they can be shown next to fd_holdout)
    _m("n_holdout", "none", 0, "n held out", "holdout"),
    _m("fd_holdout", "lower", 2, "FD held-out", "holdout"),
    _m("fd_holdout_ci", "none", 2, "FD held-out CI", "holdout"),
    _m("fd_floor", "lower", 2, "FD floor", "holdout"),
    _m("kid_holdout", "lower", 4, "KID held-out", "holdout"),
    _m("kid_holdout_ci", "none", 4, "KID held-out CI", "holdout"),
    _m("kid_floor", "lower", 4, "KID floor", "holdout"),
    # augmentation leaks: the fraction of samples showing an artefact (compare with *_real)
    *[_m(f"leak_{k}{t}", "lower", 3, f"{k} leak{' (real)' if t else ''}", "leak")
      for k in ("cutout", "border", "flip", "rot") for t in ("", "_real")],
    # pixel-space measures
    _m("sharpness", "none", 1, "sharpness", "pixel"),
    _m("sharpness_real", "none", 1, "sharpness (real)", "pixel"),
    _m("sharpness_ratio", "ratio", 3, "sharpness ratio", "pixel"),
    _m("spec_low", "ratio", 3, "spectrum low", "pixel"),
    _m("spec_mid", "ratio", 3, "spectrum mid", "pixel"),
    _m("spec_high", "ratio", 3, "spectrum high", "pixel"),
    # bookkeeping of the computation
    _m("kid_subset", "none", 0, "KID subset", "detail"),
    _m("kid_holdout_subset", "none", 0, "KID held-out subset", "detail"),
    _m("time_s", "none", 1, "eval s", "cost"),
    # a results row's cost columns (from the run's stats)
    _m("img_per_s", "higher", 0, "img/s", "cost"),
    _m("train_s", "none", 1, "train s", "cost"),
]

# the metrics of an experiment's summary (results.csv columns, summary.csv / .md), in order
SUMMARY = ("fd", "kid", "is", "precision", "recall", "density", "coverage", "near_copy_fraction", "ndb_k", "ndb_js")
# the held-out columns of a results row, in order
HOLDOUT = ("fd_holdout", "kid_holdout", "fd_floor", "kid_floor", "n_holdout")
# what an extra backbone measures (its keys: <base>_<suffix>), in order
BACKBONE_BASE = ("fd", "kid", "precision", "recall", "fd_holdout", "kid_holdout", "fd_floor", "kid_floor")
# the suffixes of the backbones metrics.evaluate knows (values of its _SUFFIXES)
BACKBONE_SUFFIXES = ("lite0", "lite2", "inception")
LEAKS = tuple(m.name for m in _BASE if m.group == "leak")
# what `fewgan eval` prints, by group (head values go in its title)
DISPLAY_GROUPS = ("main", "holdout", "backbone", "leak")

_BY_NAME = {m.name: m for m in _BASE}


def _suffixed(base: Metric, suffix: str) -> Metric:
    return replace(base, name=f"{base.name}_{suffix}", label=f"{base.label} ({suffix})", group="backbone")


def backbone_keys(suffix: str) -> tuple[str, ...]:
    """The keys an extra backbone with this suffix adds, in order (fd_lite2, kid_lite2, ...)."""
    return tuple(f"{b}_{suffix}" for b in BACKBONE_BASE)


# THE table: name -> Metric, the known backbones' suffixed keys included
TABLE: dict[str, Metric] = dict(_BY_NAME)
for _sfx in BACKBONE_SUFFIXES:
    TABLE.update({f"{b}_{_sfx}": _suffixed(_BY_NAME[b], _sfx) for b in BACKBONE_BASE})


def metric(key: str) -> Metric | None:
    """The table entry of `key`; a key of an extra backbone (``<base>_<suffix>``, any suffix)
    inherits its base's entry. None for a key the table does not know."""
    if key in TABLE:
        return TABLE[key]
    for b in sorted(BACKBONE_BASE, key=len, reverse=True):  # fd_holdout_x before fd_x
        if key.startswith(b + "_") and len(key) > len(b) + 1:
            return _suffixed(_BY_NAME[b], key[len(b) + 1:])
    return None


def direction(key: str) -> str | None:
    """lower | higher | ratio | none; None for an unknown key."""
    m = metric(key)
    return m.direction if m else None


def digits(key: str, default: int = 3) -> int:
    m = metric(key)
    return m.digits if m is not None and m.digits is not None else default


def label(key: str) -> str:
    m = metric(key)
    return m.label if m else key


def display_keys(rec: dict, suffixes: Iterable[str] = ()) -> list[str]:
    """The keys of an evaluation record people are shown, in order: headline metrics, held-out,
    each extra backbone's (by `suffixes`, in that order), leaks, then the evaluation's time."""
    keys = [m.name for m in _BASE if m.group in ("main", "holdout")]
    for s in suffixes:
        keys += backbone_keys(s)
    keys += list(LEAKS) + ["time_s"]
    return [k for k in keys if k in rec]


# ---------------------------------------------------------------------------- mean ± std over seeds


def mean_std(values: Iterable) -> tuple[float | None, float]:
    """Mean and sample std (ddof=1) over seeds of the finite values (None and NaN / inf are
    skipped); one value has std 0.0; none gives (None, 0.0)."""
    v = [float(x) for x in values if x is not None and not isinstance(x, bool) and math.isfinite(float(x))]
    if not v:
        return None, 0.0
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0


def fmt(key: str, value, missing: str = "–") -> str:
    """A value for people: rounded to the key's digits (lists element-wise); text as it is."""
    if value is None:
        return missing
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(key, v, missing) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits(key)}f}"


def fmt_pm(key: str, mean: float | None, std: float | None, missing: str = "") -> str:
    """"mean ± std" rounded to the key's digits; `missing` when there is no mean."""
    if mean is None or not math.isfinite(mean):
        return missing
    d = digits(key)
    return f"{mean:.{d}f} ± {std:.{d}f}"
