"""vaebench: a reproducible, perceptual-metric benchmark of VAE-family models.

Modules are named for what they do; only `models` (with `nets`, `models_train`,
`models_sample`) speaks to Pythae, only the `metrics` subpackage to lpips, piq, torchmetrics,
timm and open_clip, and only `tracking_wandb` and `tracking_mlflow` to the trackers.
Importing the package (or `config`) must not import torch, so that Snakemake parses the
workflow quickly.
"""

__version__ = "0.1.0"


class VaebenchError(Exception):
    """An error caused by the user's input or environment, reported as one line.

    The message names the file or config key at fault and says what to do.
    """


def one_line(err: object, limit: int = 300) -> str:
    """The first line of an exception's message, without a final full stop, at most `limit`
    characters (MLflow's and W&B's messages run long)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    line = (lines[0] if lines else type(err).__name__).rstrip(".")
    return line if len(line) <= limit else line[: limit - 1] + "…"
