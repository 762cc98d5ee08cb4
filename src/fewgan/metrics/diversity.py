"""How much generated samples differ from one another, with no reference to the real set.

Recall and coverage (``prdc``) ask whether the generated set reaches the real images; when a
generator is still far from the data (every sample outside every real k-NN ball) both are 0
whether it draws one image or a thousand different ones. The measures here tell those apart:

- ``vendi_score`` (Friedman & Dieng 2023, "The Vendi Score: A Diversity Evaluation Metric for
  Machine Learning"): the exponential of the Shannon entropy of the eigenvalues of K / n, with
  K the n × n similarity matrix (k(x, x) = 1). It is the effective number of distinct samples:
  1 for n identical samples, n for n mutually orthogonal ones. We use the cosine kernel on
  backbone features, as the authors do for embeddings.
- ``feature_spread``: trace(Σ_gen) / trace(Σ_real), the total feature variance of the
  generated set relative to the real one (1 = spread as widely as the data; 0 = one image).
  It is half the mean squared pairwise distance, so it reads as "how far apart samples lie".

Pure functions on (N, D) feature arrays.
"""

from __future__ import annotations

import torch

from ._knn import as_t64

__all__ = ["vendi_score", "feature_spread"]


def vendi_score(features) -> float:
    """Vendi score of a set of feature vectors under the cosine kernel (in [1, min(n, d)])."""
    x = as_t64(features, "features")
    n = len(x)
    if n < 1:
        raise ValueError("vendi_score needs at least one sample")
    norms = x.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("vendi_score: a feature vector is all zeros (cosine similarity undefined)")
    x = x / norms
    # K / n and X^T X / n share their non-zero eigenvalues; use the smaller matrix
    gram = (x.T @ x if x.shape[1] < n else x @ x.T) / n
    lam = torch.linalg.eigvalsh(gram).clamp_min(0)
    lam = lam[lam > 1e-12]
    return float(torch.exp(-(lam * lam.log()).sum()))


def feature_spread(real_features, gen_features) -> float:
    """trace(Σ_gen) / trace(Σ_real): the generated set's total variance relative to the real set's."""
    real, gen = as_t64(real_features, "real_features"), as_t64(gen_features, "gen_features")
    if real.shape[1] != gen.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {gen.shape[1]}")
    if len(real) < 2 or len(gen) < 2:
        raise ValueError("feature_spread needs at least 2 real and 2 generated samples")
    t_real = float(real.var(dim=0, unbiased=True).sum())
    if t_real == 0:
        raise ValueError("feature_spread: the real features have zero variance")
    return float(gen.var(dim=0, unbiased=True).sum()) / t_real
