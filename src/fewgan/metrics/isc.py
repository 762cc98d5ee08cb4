"""Inception(-style) Score from class probabilities.

Reference: Salimans et al. 2016, "Improved Techniques for Training GANs".
``IS = exp( E_x KL(p(y|x) || p(y)) )`` computed per split, p(y) being the mean
prediction within the split; returns mean and std (ddof=0) over splits, like the
original code and torch-fidelity. With a non-Inception backbone (e.g.
EfficientNet-Lite0) this is an "inception-style" score: only comparable with
scores from the same backbone.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["inception_score"]


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    r"""Inception score of (N, K) class probabilities: (mean, std) over ``splits``.

    Per split s: :math:`IS_s = \exp\big(\frac{1}{|s|}\sum_{x\in s}\sum_y p(y|x)
    [\log p(y|x) - \log \bar p_s(y)]\big)`, :math:`\bar p_s = \text{mean}_{x\in s} p(y|x)`.
    Splits are contiguous chunks (``np.array_split`` sizes), so with ``splits=1`` the
    score is exactly permutation invariant; with more splits the partition depends
    on sample order (as in the original implementation), only the expectation does not.
    Uses 0·log 0 = 0. Bounds: 1 <= IS <= K.
    """
    p = torch.as_tensor(probs).detach().to("cpu", torch.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (N, num_classes), got shape {tuple(p.shape)}")
    n = p.shape[0]
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    if n < splits:
        raise ValueError(f"inception_score needs at least as many samples as splits: got {n} samples for {splits} splits")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(n, dtype=p.dtype), atol=1e-3):
        raise ValueError("probs must be non-negative and each row must sum to 1 (apply softmax first)")
    scores = []
    for chunk in torch.tensor_split(p, splits, dim=0):
        py = chunk.mean(0, keepdim=True)
        # xlogy gives 0*log(0) = 0; p>0 implies py>0 so the second term is finite.
        kl = (torch.xlogy(chunk, chunk) - torch.xlogy(chunk, py.expand_as(chunk))).sum(1)
        scores.append(float(torch.exp(kl.mean())))
    arr = np.asarray(scores)
    return float(arr.mean()), float(arr.std())
