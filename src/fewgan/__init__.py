"""fewgan: GANs on limited image data, measured honestly.

    import fewgan
    result = fewgan.train("dcgan", data="emoji", out="runs/demo", train__steps=200)
    images = fewgan.load(result.run_dir).sample(16, seed=0)

The API (fewgan.api) imports torch only when a function is called.
"""

__version__ = "0.1.0"

from .api import Generator, evaluate, load, sample, train  # noqa: E402

__all__ = ["train", "load", "sample", "evaluate", "Generator", "__version__"]
