"""fewgan: GANs on limited image data, measured honestly."""

__version__ = "0.1.0"
