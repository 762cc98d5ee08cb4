"""Experiment specs: presets x data sets x grid values x seeds, one step budget, one evaluation.

    name: emoji-presets            # folder name under experiments/ by default
    presets: [dcgan, sngan]
    data: [emoji, {source: ../shared/data/cifar10_1k.npz, resolution: 32, overrides: {latent.fd: 2}}]
    seeds: [0, 1]
    steps: 1000                    # the same budget for every run
    overrides: {train.batch_size: 64}      # applied to every run
    grid: {train.fast: [false, true]}      # each combination is a variant of each preset
    eval: {n: 1000, every: 250, backbone: effnet-lite0}
    seed_major: true               # optional: all variants' first seed before any second seed

Unknown keys are errors naming the key, as in run configs.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import config as config_mod
from ..config import ConfigError

_KEYS = {"name", "presets", "data", "seeds", "steps", "overrides", "grid", "eval", "description", "seed_major"}


@dataclass(frozen=True)
class Job:
    run: str  # folder name under <experiment>/runs/
    variant: str  # preset plus grid values, the row label in tables
    data: str  # data label
    seed: int
    cfg: config_mod.Config


@dataclass
class Spec:
    name: str
    presets: list[str]
    data: list[dict]
    seeds: list[int]
    steps: int
    overrides: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    description: str = ""
    seed_major: bool = False  # run every variant's seed 0 before any seed 1, so a partial grid is balanced

    def jobs(self) -> list[Job]:
        out = []
        keys = list(self.grid)
        combos = list(itertools.product(*(self.grid[k] for k in keys))) if keys else [()]
        for d in self.data:
            dlabel = d.get("label") or Path(str(d["source"])).stem
            for preset in self.presets:
                for combo in combos:
                    tag = ",".join(f"{k}={_fmt(v)}" for k, v in zip(keys, combo))
                    variant = f"{preset}[{tag}]" if tag else preset
                    for seed in self.seeds:
                        cfg = config_mod.load_preset(preset)
                        values = {**self.overrides, **dict(zip(keys, combo)),
                                  "train.steps": self.steps, "train.seed": seed,
                                  "data.source": str(d["source"]), "log.progress": False,
                                  **{f"data.{k}": v for k, v in d.items() if k not in ("source", "label", "overrides")},
                                  **d.get("overrides", {}),
                                  **{f"eval.{k}": v for k, v in self.eval.items()}}
                        cfg = config_mod.from_dict(_nest(values), cfg, where=f"experiment {self.name}")
                        run = _slug(f"{variant}__{dlabel}__s{seed}")
                        out.append(Job(run, variant, dlabel, seed, cfg))
        if self.seed_major:
            out.sort(key=lambda j: self.seeds.index(j.seed))  # stable: data / preset order kept within a seed
        return out


_SELECT_KEYS = ("data", "preset", "variant", "seed", "run")


def select(jobs: list[Job], only: list[str]) -> list[Job]:
    """The jobs that match every `KEY=PATTERN` filter (`fewgan experiment --only`).

    KEY is data (label), preset, variant, seed or run; PATTERN a shell pattern (`cifar*`). Filters
    with the same key are alternatives (data=a --only data=b: either), different keys must all hold.
    """
    wanted: dict[str, list[str]] = {}
    for f in only:
        key, sep, pat = f.partition("=")
        if not sep or key not in _SELECT_KEYS or not pat:
            raise ConfigError(f"--only {f!r}: expected KEY=PATTERN with KEY one of {', '.join(_SELECT_KEYS)}")
        wanted.setdefault(key, []).append(pat)

    def fields(j: Job) -> dict[str, str]:
        return {"data": j.data, "preset": j.variant.split("[")[0], "variant": j.variant, "seed": str(j.seed),
                "run": j.run}

    out = [j for j in jobs
           if all(any(fnmatch.fnmatchcase(fields(j)[k], pat) for pat in pats) for k, pats in wanted.items())]
    if jobs and not out:
        have = {k: sorted({fields(j)[k] for j in jobs}) for k in wanted}
        raise ConfigError("--only " + " ".join(only) + " matches no run of this experiment; it has "
                          + "; ".join(f"{k}: {', '.join(v)}" for k, v in have.items()))
    return out


def _fmt(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "-", s).strip("-")


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, v in flat.items():
        if key.count(".") != 1:
            raise ConfigError(f"experiment key {key!r}: expected section.key, e.g. train.lr_d")
        s, k = key.split(".")
        out.setdefault(s, {})[k] = v
    return out


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    d = config_mod.load_yaml(path)
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping")
    unknown = set(d) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(_KEYS))}")
    for req in ("presets", "data", "seeds", "steps"):
        if req not in d:
            raise ConfigError(f"{path}: missing required key {req!r}")
    data = [x if isinstance(x, dict) else {"source": x} for x in _as_list(d["data"], "data", path)]
    for x in data:
        if "source" not in x:
            raise ConfigError(f"{path}: every data entry needs a 'source', got {x}")
    grid = d.get("grid") or {}
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{path}: grid.{k} must be a non-empty list of values")
    ev = d.get("eval") or {}
    spec = Spec(name=str(d.get("name") or path.stem), presets=_as_list(d["presets"], "presets", path),
                data=data, seeds=[int(s) for s in _as_list(d["seeds"], "seeds", path)], steps=int(d["steps"]),
                overrides=d.get("overrides") or {}, grid=grid, eval=ev, description=str(d.get("description", "")),
                seed_major=bool(d.get("seed_major", False)))
    spec.jobs()  # validates every preset, key and type now, not halfway through a long grid
    return spec


def _as_list(v, key, path) -> list:
    if isinstance(v, (str, int)):
        return [v]
    if not isinstance(v, list) or not v:
        raise ConfigError(f"{path}: {key} must be a non-empty list")
    return v
