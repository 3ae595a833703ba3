"""The feature-space jobs: reference features and set-level metrics of sample sets on the
feature spaces of `metrics.feature_spaces` other than Inception (vaebench.metrics.spaces),
called through vaebench.jobs. Inception stays in the generation_metrics job, whose columns
(fid, kid_mean, ...) the literature's tables use."""

from __future__ import annotations

from vaebench import (
    io,
    jobs,  # its helpers, at call time (jobs imports this module)
)


def stage_space_weights(space: str, cache: str, allow_random: bool, report: str,
                        threads: int = 1) -> None:  # fmt: skip
    """A feature space's weight file, fetched or placed as stage_weights does for the others
    (a local rule: the only other job that may reach the network)."""
    jobs._torch(threads)
    from vaebench.metrics import weights

    weights.stage_weights(cache, allow_random=allow_random, report=report,
                          files=(weights.space_file(space),))  # fmt: skip


def _meta(space: str, cache: str, extra: dict) -> dict:
    from vaebench.metrics import weights

    checked = weights.check_weights(cache, (weights.space_file(space),))
    meta = io.provenance(extra, device=str(jobs._device()))
    meta["weights"] = checked
    meta["weights_official"] = all(w["official"] for w in checked.values())
    return meta


def space_reference(space: str, reference: str, weights_cache: str, out: str,
                    batch_size: int = 32, threads: int = 1) -> None:  # fmt: skip
    """The reference set's features on one space, computed once per study."""
    jobs._torch(threads)
    from vaebench.metrics import features

    _meta(space, weights_cache, {})  # the file must be there (one-line error if not)
    feats = features.extract(space, io.load_npy(reference), weights_cache, jobs._device(),
                             batch_size)  # fmt: skip
    io.save_npy(out, feats)


def space_metrics(info: dict, sampler: str, space: str, mcfg: dict, samples: str,
                  reference_features: str, weights_cache: str, out: str,
                  threads: int = 1) -> None:  # fmt: skip
    """One row: the set-level metrics (vaebench.metrics.sets.scores) of a sample set against
    the reference set on one feature space; CMMD only where the space is CLIP's."""
    import pandas as pd

    jobs._torch(threads)
    from vaebench.metrics import features, sets, spaces

    sp = spaces.BY_KEY[space]
    meta = _meta(space, weights_cache, {"metrics": mcfg, "run": info, "sampler": sampler,
                                        "space": space})  # fmt: skip
    dev = jobs._device()
    real = io.load_npy(reference_features)
    fake = features.extract(space, io.load_npy(samples), weights_cache, dev, mcfg["batch_size"])
    s, settings = sets.scored(real, fake, mcfg, info["seed"], dev, with_cmmd=sp.cmmd)
    meta["generation"] = {
        "features": f"{sp.label}: {sp.protocol}",
        "reference_implementation": sp.reference,
        **settings,
        **({"cmmd": {"sigma": sets.CMMD_SIGMA, "scale": sets.CMMD_SCALE}} if sp.cmmd else {}),
    }
    row = {**info, "sampler": sampler, "space": space, **s, "n_generated": len(fake),
           "n_reference": len(real), "kid_subset_size": settings["kid_subset_size"]}  # fmt: skip
    df = pd.DataFrame([row])
    df["beta"] = df["beta"].astype("float64")
    io.save_parquet(out, df, meta)
