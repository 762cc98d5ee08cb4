"""The online collapse / instability monitor (`log.monitors: [collapse]`, settings in `monitor.*`).

Both source texts describe the same failure on small data: D wins too fast and G collapses
to a few modes. This monitor watches four signals while training and warns, naming the
signal and the iteration, when one of them starts to fire:

- diversity: mean pairwise distance of the fixed-z samples divided by that of real images,
  in a cheap feature space (images average-pooled to `pixels` x `pixels`). A collapsed G
  draws near-identical images from different z, so the ratio falls towards 0.
- duplicates: the fraction of the fixed-z samples whose nearest other sample is closer than
  real images ever are to each other: the `dup_quantile` quantile (5 %) of the nearest-neighbour
  distances inside real subsets of the same size n, so a real sample scores ~`dup_quantile`.
  A G that has collapsed to a few modes (or, like DeLiGAN, to its K mixture components) repeats
  near-identical images from different z even when those few images are far apart, which the
  mean pairwise distance misses (results/balance/README.md shows both on real runs).
- ndb: NDB/K (Richardson & Weiss 2018, fewgan.metrics.ndb) of the same samples against
  k-means cells of real images in that feature space; collapse empties most cells.
- saturation: over the last `window` iterations D's mean sigmoid is ~1 on real images and
  ~0 on generated ones, i.e. D has won and G's gradients vanish (the MLP-GAN failure).
- oscillation: std / mean of loss_d or loss_g over the window (the losses swing widely),
  and non-finite losses.

The sample-based signals are computed every `monitor.every` iterations; the window signals
every iteration once the window is full. A warning is raised when a signal turns on (not
again while it stays on), and none before `monitor.warmup`, since a fresh G is neither
diverse nor stable. Raw values go to stats.jsonl as `mon_*` keys at every check.

The monitor never changes training: samples come from the sampling generator in eval mode
(BN statistics untouched) with their own seeded noise, under torch.random.fork_rng. The
thresholds are heuristics ([I]); the balance study (results/balance/) is where they are checked.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...data import to_float
from ...metrics.ndb import kmeans, ndb
from .base import MONITORS, Monitor

_WINDOW_KEYS = ("d_real", "d_fake", "loss_d", "loss_g")


# ----------------------------------------------------------------------------- pure signal functions


def pixel_features(x: torch.Tensor, size: int = 8) -> torch.Tensor:
    """Cheap image features: uint8 or [-1, 1] images (N, C, H, W) average-pooled to size x size, flattened."""
    x = to_float(x) if x.dtype == torch.uint8 else x.float()
    if x.shape[-1] > size or x.shape[-2] > size:
        x = F.adaptive_avg_pool2d(x, size)
    return x.flatten(1).double()


def mean_pairwise_distance(f: torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs of rows (0 for fewer than 2 rows)."""
    return float(torch.pdist(f.double()).mean()) if len(f) > 1 else 0.0


def nearest_neighbour_distances(f: torch.Tensor) -> torch.Tensor:
    """Each row's Euclidean distance to its nearest other row (needs >= 2 rows)."""
    d = torch.cdist(f.double(), f.double())
    d.fill_diagonal_(math.inf)
    return d.min(dim=1).values


def duplicate_threshold(real_f: torch.Tensor, n: int, quantile: float, seed: int = 0, repeats: int = 8) -> float:
    """The `quantile` quantile of nearest-neighbour distances inside random real subsets of size n
    (all real rows when there are fewer than n), pooled over `repeats` seeded subsets."""
    gen = torch.Generator().manual_seed(seed)
    m = min(n, len(real_f))
    if m < 2:
        raise ValueError(f"need >= 2 real images for the duplicate threshold, got {len(real_f)}")
    dists = [nearest_neighbour_distances(real_f[torch.randperm(len(real_f), generator=gen)[:m]])
             for _ in range(repeats if m < len(real_f) else 1)]
    return float(torch.quantile(torch.cat(dists), quantile))


def duplicate_fraction(f: torch.Tensor, threshold: float) -> float:
    """Share of rows whose nearest other row is closer than `threshold` (0 for fewer than 2 rows)."""
    return float((nearest_neighbour_distances(f) < threshold).double().mean()) if len(f) > 1 else 0.0


def coefficient_of_variation(values) -> float:
    """std / |mean| of a sequence (population std); inf when the mean is ~0 but the values vary."""
    v = torch.as_tensor(list(values), dtype=torch.float64)
    if len(v) < 2:
        return 0.0
    mean, std = float(v.mean()), float(v.std(correction=0))
    if abs(mean) < 1e-12:
        return 0.0 if std == 0 else math.inf
    return std / abs(mean)


def d_saturated(d_real, d_fake, eps: float) -> bool:
    """D has won: mean sigmoid on real images > 1 - eps and on generated ones < eps."""
    return sum(d_real) / len(d_real) > 1 - eps and sum(d_fake) / len(d_fake) < eps


# ----------------------------------------------------------------------------- the monitor


@MONITORS.register("collapse")
class CollapseMonitor(Monitor):
    def __init__(self, cfg):
        m = cfg.monitor
        for key in ("every", "n", "n_real", "pixels", "window", "ndb_cells"):
            if getattr(m, key) < 1:
                raise ValueError(f"monitor.{key} must be >= 1, got {getattr(m, key)}")
        if not 0 < m.dup_quantile < 1:
            raise ValueError(f"monitor.dup_quantile must be in (0, 1), got {m.dup_quantile}")
        if m.n < 2:
            raise ValueError(f"monitor.n must be >= 2 (pairwise distances), got {m.n}")
        self.m = cfg.monitor
        self.seed = cfg.train.seed
        self.history: dict[str, list[float]] = {k: [] for k in _WINDOW_KEYS}  # last `window` finite values
        self.active: dict[str, bool] = {}  # which signals are on now (warnings fire when one turns on)
        self._ref: tuple | None = None  # (real features, NDB centres, real diversity), rebuilt from the data

    # --- JSON state: the window and the on/off flags, so a resumed run warns exactly as an uninterrupted one
    def state_dict(self) -> dict:
        return {"history": {k: list(v) for k, v in self.history.items()}, "active": dict(self.active)}

    def load_state_dict(self, state: dict) -> None:
        self.history = {k: [float(x) for x in state.get("history", {}).get(k, [])] for k in _WINDOW_KEYS}
        self.active = {k: bool(v) for k, v in state.get("active", {}).items()}

    def _reference(self, data) -> tuple:
        """Features of a fixed seeded subset of real images, their k-means cells, their diversity and
        the near-duplicate distance threshold at the monitor's sample size."""
        if self._ref is None:
            gen = torch.Generator().manual_seed(self.seed + 104729)
            idx = torch.randperm(len(data), generator=gen)[:min(self.m.n_real, len(data))]
            f = pixel_features(data.x[idx], self.m.pixels)
            centres, _ = kmeans(f, min(self.m.ndb_cells, len(f)), seed=self.seed)
            dup = duplicate_threshold(f, self.m.n, self.m.dup_quantile, seed=self.seed)
            self._ref = (f, centres, mean_pairwise_distance(f), dup)
        return self._ref

    def _samples(self, trainer) -> torch.Tensor:
        from ...sampling import generate

        pipe = trainer.variant.sampler()
        y = None
        if getattr(pipe, "conditional", False) and trainer.data.num_classes:
            y = torch.arange(self.m.n) % trainer.data.num_classes
        with torch.random.fork_rng():  # generate() is seeded, but nothing here may move the training RNG
            return generate(pipe, self.m.n, trainer.fixed_noise_seed, y=y)

    def signals(self, samples=None, data=None) -> dict[str, float]:
        """Raw signal values for this iteration (window signals once the window is full; sample
        signals when samples are given). Pure given the monitor's window."""
        out: dict[str, float] = {}
        w = self.m.window
        if all(len(self.history[k]) >= w for k in _WINDOW_KEYS):
            h = {k: self.history[k][-w:] for k in _WINDOW_KEYS}
            out["mon_d_real"] = sum(h["d_real"]) / w
            out["mon_d_fake"] = sum(h["d_fake"]) / w
            out["mon_cv_loss_d"] = coefficient_of_variation(h["loss_d"])
            out["mon_cv_loss_g"] = coefficient_of_variation(h["loss_g"])
        if samples is not None:
            real_f, centres, real_div, dup_threshold = self._reference(data)
            gen_f = pixel_features(samples, self.m.pixels)
            out["mon_diversity"] = mean_pairwise_distance(gen_f) / real_div if real_div > 0 else 0.0
            out["mon_duplicates"] = duplicate_fraction(gen_f, dup_threshold)
            out["mon_ndb_k"] = ndb(real_f, gen_f, centers=centres).ndb_k
        return out

    def firing(self, sig: dict[str, float], stats: dict) -> dict[str, str]:
        """Which signals fire on these values, each with a one-line reason."""
        m, on = self.m, {}
        for k in ("loss_d", "loss_g"):
            v = stats.get(k)
            if isinstance(v, float) and not math.isfinite(v):
                on[f"nonfinite_{k}"] = f"{k} is {v}"
        if "mon_d_real" in sig and sig["mon_d_real"] > 1 - m.saturation and sig["mon_d_fake"] < m.saturation:
            on["saturation"] = (f"D saturated over the last {m.window} iterations: mean D(x) {sig['mon_d_real']:.3f}, "
                                f"mean D(G(z)) {sig['mon_d_fake']:.3f}")
        for k in ("loss_d", "loss_g"):
            cv = sig.get(f"mon_cv_{k}")
            if cv is not None and cv > m.oscillation_max:
                on[f"oscillation_{k}"] = f"{k} oscillates: std/mean {cv:.2f} over {m.window} iterations (> {m.oscillation_max})"
        if "mon_diversity" in sig and sig["mon_diversity"] < m.diversity_min:
            on["diversity"] = (f"fixed-z samples' diversity is {sig['mon_diversity']:.2f} of the real images' "
                               f"(< {m.diversity_min})")
        if "mon_duplicates" in sig and sig["mon_duplicates"] > m.dup_max:
            on["duplicates"] = (f"{sig['mon_duplicates']:.0%} of {m.n} fixed-z samples have a near-duplicate among them "
                                f"(> {m.dup_max:.0%}; real images: ~{m.dup_quantile:.0%})")
        if "mon_ndb_k" in sig and sig["mon_ndb_k"] > m.ndb_max:
            on["ndb"] = f"NDB/K {sig['mon_ndb_k']:.2f} on {m.n} samples (> {m.ndb_max})"
        return on

    def __call__(self, trainer, stats: dict) -> dict:
        step = int(stats["step"]) if "step" in stats else trainer.step
        for k in _WINDOW_KEYS:
            v = stats.get(k)
            if isinstance(v, (int, float)) and math.isfinite(v):
                self.history[k] = (self.history[k] + [float(v)])[-self.m.window:]
        check = step % self.m.every == 0
        samples = self._samples(trainer) if check else None
        sig = self.signals(samples, trainer.data)
        on = self.firing(sig, stats) if step > self.m.warmup else {}
        # sample-based signals keep their last state between checks; window signals update every iteration
        sample_based = {"diversity", "duplicates", "ndb"}
        new_active = {k: v for k, v in self.active.items() if k in sample_based and not check}
        new_active.update({k: True for k in on})
        warnings = [f"{k} fired at step {step}: {why}" for k, why in on.items() if not self.active.get(k)]
        self.active = new_active
        out: dict = dict(sig) if (check or warnings) else {}
        if warnings:
            out["warnings"] = list(stats.get("warnings", [])) + warnings  # keep other monitors' warnings
        return out
