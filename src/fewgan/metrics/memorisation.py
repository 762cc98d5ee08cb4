"""Memorisation / near-copy detection in feature space.

With few training images a GAN (especially with a strong discriminator and long
training) can reproduce training images. For each generated sample we find its
nearest training sample and compare that distance with the *typical spacing of
the training set itself*:

    ratio_j = d(g_j, NN_train(g_j)) / median_i d(t_i, NN_train\\{t_i}(t_i))

Why the default threshold 0.5: a genuinely new sample from the training
distribution lies, from its nearest training image, about as far as training
images lie from each other (ratio ~ 1; slightly below because it sees all N
training images instead of N-1). Under a locally uniform (Poisson) model in d
dimensions, P(ratio < r) ~= 1 - 2^(-r^d): for r = 0.5 that is 16% at d=2 but
0.3% at d=8 and ~1e-5 at d=16, i.e. essentially never for 1280-/2048-d
backbone features. A ratio below 0.5 therefore means "closer to one training
image than training images ever are to each other" - a near-copy (or a copy
with small perturbations such as flips/crops that the backbone barely sees).
It is a flag for inspection (look at ``closest_pairs``), not proof.
In very low-dimensional features the threshold must be lowered.

Reference: in the spirit of Meehan et al. 2020 ("A Non-Parametric Test to
Detect Data-Copying in Generative Models") and the nearest-neighbour checks of
Webster et al. 2019; the ratio-to-training-spacing normalisation here is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._knn import as_t64, nearest_neighbour

__all__ = ["MemorisationReport", "memorisation_report", "closest_pairs", "DEFAULT_NEAR_COPY_THRESHOLD"]

DEFAULT_NEAR_COPY_THRESHOLD = 0.5


@dataclass(frozen=True)
class MemorisationReport:
    nn_index: torch.Tensor  # (M,) long: nearest training sample of each generated sample
    nn_distance: torch.Tensor  # (M,) float64: its distance
    train_nn_distance: torch.Tensor  # (N,) float64: train-to-train NN distance, self excluded
    train_nn_median: float
    ratio: torch.Tensor  # (M,) nn_distance / train_nn_median
    threshold: float
    near_copy_fraction: float  # mean(ratio < threshold)

    @property
    def near_copy_mask(self) -> torch.Tensor:
        return self.ratio < self.threshold

    def summary(self) -> dict:
        """Small JSON-able dict of scalars."""
        return {
            "near_copy_fraction": self.near_copy_fraction,
            "threshold": self.threshold,
            "train_nn_median": self.train_nn_median,
            "ratio_min": float(self.ratio.min()),
            "ratio_median": float(self.ratio.median()),
            "n_generated": int(self.ratio.numel()),
            "n_train": int(self.train_nn_distance.numel()),
        }


def memorisation_report(gen_features, train_features,
                        threshold: float = DEFAULT_NEAR_COPY_THRESHOLD,
                        chunk_size: int = 1024) -> MemorisationReport:
    """Nearest training neighbour of each generated feature and the near-copy fraction.

    ``near_copy_fraction = mean_j [ d_nn(g_j) / median_i d_nn(t_i) < threshold ]``
    (see module docstring for why 0.5). Needs >= 2 training samples.
    """
    gen = as_t64(gen_features, "gen_features")
    train = as_t64(train_features, "train_features")
    if gen.shape[1] != train.shape[1]:
        raise ValueError(f"feature dims differ: {gen.shape[1]} vs {train.shape[1]}")
    if train.shape[0] < 2:
        raise ValueError("need at least 2 training samples for train-to-train distances")
    gen = gen.to(train.device)
    d_gen, i_gen = nearest_neighbour(gen, train, chunk_size)
    d_train, _ = nearest_neighbour(train, train, chunk_size, exclude_self=True)
    median = float(d_train.median())
    if median <= 0.0:
        raise ValueError(
            "median train-to-train nearest-neighbour distance is 0 (over half the training "
            "features are duplicates); the near-copy ratio is undefined"
        )
    ratio = d_gen / median
    return MemorisationReport(
        nn_index=i_gen.cpu(),
        nn_distance=d_gen.cpu(),
        train_nn_distance=d_train.cpu(),
        train_nn_median=median,
        ratio=ratio.cpu(),
        threshold=float(threshold),
        near_copy_fraction=float((ratio < threshold).double().mean()),
    )


def closest_pairs(report: MemorisationReport, k: int = 8) -> list[tuple[int, int, float]]:
    """The k (generated_index, training_index, distance) pairs with the smallest distance,
    one pair per generated sample, closest first - e.g. to draw a side-by-side picture."""
    k = min(int(k), report.nn_distance.numel())
    order = torch.argsort(report.nn_distance, stable=True)[:k]
    return [(int(j), int(report.nn_index[j]), float(report.nn_distance[j])) for j in order]
