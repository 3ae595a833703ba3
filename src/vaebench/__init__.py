"""vaebench: a reproducible, perceptual-metric benchmark of VAE-family models.

Modules are named for what they do; only `models` speaks to Pythae and only `metrics`
speaks to lpips/piq. Importing the package (or `config`) must not import torch, so that
Snakemake parses the workflow quickly.
"""

__version__ = "0.1.0"


class VaebenchError(Exception):
    """An error caused by the user's input or environment, reported as one line.

    The message names the file or config key at fault and says what to do.
    """
