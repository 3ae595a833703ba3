"""What every benchmark script does last: record versions, print the figures, save JSON."""

from __future__ import annotations

from vaebench.io import save_json, versions


def finish(result: dict, out: str | None) -> None:
    """Add package versions, print the scalar entries, and write `out` (JSON) if given."""
    result["versions"] = versions()
    width = max(map(len, result))
    for k, v in result.items():
        if isinstance(v, float):
            print(f"{k:<{width}}  {v:.4g}")
        elif not isinstance(v, dict | list):
            print(f"{k:<{width}}  {v}")
    if out:
        save_json(out, result)
