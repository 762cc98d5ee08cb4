"""fewgan.metrics: measure honestly.

Pure math on feature arrays (``fd``, ``kid``, ``isc``, ``prdc``, ``ndb``, ``diversity``, ``memorisation``,
``bootstrap``; ``sharpness`` on pixels) is kept separate from feature extraction (``features``), like
torch-fidelity / clean-fid. Importing this package does not load any network.
"""

from .bootstrap import bootstrap_ci, bootstrap_fd_ci, bootstrap_kid_ci
from .fd import fd_from_features, feature_stats, frechet_distance
from .diversity import feature_spread, vendi_score
from .features import Backbone, BackboneUnavailable, available_backbones, extract, get_backbone
from .isc import inception_score
from .kid import kernel_matrices, kid_from_features, kid_from_kernels, mmd2_unbiased, polynomial_kernel
from .memorisation import (
    DEFAULT_NEAR_COPY_THRESHOLD,
    MemorisationReport,
    closest_pairs,
    memorisation_report,
)
from .ndb import NDBResult, ndb
from .prdc import PRDC, prdc
from .sharpness import band_powers, laplacian_variance, sharpness, spectral_bands

__all__ = [
    "frechet_distance", "feature_stats", "fd_from_features",
    "mmd2_unbiased", "polynomial_kernel", "kid_from_features", "kernel_matrices", "kid_from_kernels",
    "inception_score",
    "PRDC", "prdc",
    "laplacian_variance", "sharpness", "band_powers", "spectral_bands",
    "NDBResult", "ndb",
    "vendi_score", "feature_spread",
    "MemorisationReport", "memorisation_report", "closest_pairs", "DEFAULT_NEAR_COPY_THRESHOLD",
    "bootstrap_ci", "bootstrap_fd_ci", "bootstrap_kid_ci",
    "Backbone", "BackboneUnavailable", "get_backbone", "extract", "available_backbones",
]
