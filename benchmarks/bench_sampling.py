"""Benchmark: the latent GMM fit and the precision/recall k-NN, before and after.

    .venv/bin/python benchmarks/bench_sampling.py --out results/bench/sampling.json

Before: what the jobs ran until now, scikit-learn's GaussianMixture (full covariance, as
Pythae's sampler fits it) in NumPy, and precision/recall's distance matrices in NumPy. After:
vaebench.gmm.fit (the same EM in torch) and sets.precision_recall (torch), on the
device a job would use: the CPU with --threads threads (the job's eval_threads), and CUDA too
where it is usable. Both sides run in this process, side by side, on the same data:

- GMM: VQ-VAE-like codes (10 clusters on 32-dimensional manifolds in D dimensions, plus
  noise) at the demo's size (1,600 codes of 4 x 4 x 16 = 256) and the study's (10,000 of
  4 x 4 x 64 = 1,024), 10 components;
- precision/recall (k = 3): N real and N generated 2,048-d features.

`gmm_speedup_*` and `pr_speedup_*` are before / after seconds; on the CPU the same BLAS does
the same work on both sides, so expect about 1; the change is that the work can now move to
the GPU the job holds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import threadpoolctl
import torch
from sklearn.mixture import GaussianMixture

from vaebench import gmm
from vaebench.io import save_json, versions
from vaebench.metrics import sets


def codes(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres, labels = rng.standard_normal((10, d)), rng.integers(10, size=n)
    basis = rng.standard_normal((10, 32, d))
    on = np.einsum("nr,nrd->nd", rng.standard_normal((n, 32)), basis[labels])
    return centres[labels] + on + 0.1 * rng.standard_normal((n, d))


def numpy_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The NumPy implementation the jobs ran before (the same chunks and arithmetic)."""

    def sq(a, b):
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)

    step = lambda n: max(1, (1 << 24) // n)  # noqa: E731

    def radii(f):
        s = step(len(f))
        return np.concatenate([np.partition(sq(f[i : i + s], f), k, 1)[:, k]
                               for i in range(0, len(f), s)])  # fmt: skip

    def inside(q, ref, r2):
        s = step(len(ref))
        return sum(int((sq(q[i : i + s], ref) <= r2[None]).any(1).sum())
                   for i in range(0, len(q), s)) / len(q)  # fmt: skip

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gmm-sizes", default="1600x256,10000x1024", help="codes x dimensions")
    ap.add_argument("--pr-n", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    result: dict = {"threads": args.threads, "devices": devices, "gmm": [], "pr": []}
    for size, name in zip(args.gmm_sizes.split(","), ("demo", "study"), strict=False):
        n, d = map(int, size.split("x"))
        x = codes(n, d)
        ref, before = timed(GaussianMixture(10, covariance_type="full", max_iter=2000,
                                            tol=1e-3, random_state=0).fit, x)  # fmt: skip
        row = {"size": name, "n": n, "d": d, "sklearn_s": before, "iterations": int(ref.n_iter_)}
        for dev in devices:
            ours, after = timed(gmm.fit, x, 10, 0, dev)
            assert ours.n_iter_ == ref.n_iter_, (ours.n_iter_, ref.n_iter_)
            row[f"torch_{dev}_s"] = after
            result[f"gmm_speedup_{name}_{dev}"] = before / after
        result["gmm"].append(row)
        print(row, flush=True)
    rng = np.random.default_rng(1)
    real = rng.standard_normal((args.pr_n, 2048))
    fake = 1.1 * rng.standard_normal((args.pr_n, 2048)) + 0.02
    expected, before = timed(numpy_precision_recall, real, fake, 3)
    row = {"n": args.pr_n, "numpy_s": before}
    for dev in devices:
        got, after = timed(sets.precision_recall, real, fake, 3, dev)
        # float64 on both sides; only a point exactly on a ball's edge could flip
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 1 / args.pr_n
        row[f"torch_{dev}_s"] = after
        result[f"pr_speedup_{dev}"] = before / after
    result["pr"].append(row)
    print(row, flush=True)
    result["versions"] = versions()
    save_json(args.out, result)


if __name__ == "__main__":
    main()
