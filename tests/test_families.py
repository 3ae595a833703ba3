"""The family registry is the one source of the families' lists (vaebench.families)."""

from __future__ import annotations

import re

import pytest

from vaebench import VaebenchError, families, figstyle, names
from vaebench import config as vb


def _config(**extra) -> dict:
    base = {"dataset": {"name": "shapes"}, "models": list(families.MODEL_ORDER), "seeds": [0, 1],
            "betas": [0.5, 4]}  # fmt: skip
    return vb.validate({**base, **extra})


def test_every_list_is_the_registrys():
    keys = [f.key for f in families.REGISTRY]
    assert list(vb.MODEL_ORDER) == keys == list(names.MODEL_ORDER)
    assert vb._schema()["properties"]["models"]["items"]["enum"] == keys
    assert vb.FAMILY is names.FAMILY is families.FAMILY
    assert names.NOT_APPLICABLE is families.NOT_APPLICABLE
    assert figstyle.PALETTE is families.PALETTE
    for f in families.REGISTRY:
        assert figstyle.family_colour(f.key) == f.colour == figstyle.family_colour(f.label)


def test_the_schema_rejects_a_family_the_registry_lacks():
    with pytest.raises(VaebenchError, match=r"key 'models\[0\]'"):
        _config(models=["iwae_typo"])


def test_runs_samplers_and_wildcard_follow_the_registry():
    cfg = _config(sampling={"samplers": list(families.SAMPLERS)})
    runs = vb.runs(cfg)
    assert {r.model for r in runs} == set(families.MODEL_ORDER)
    pattern = re.compile(vb.RUN_PATTERN)
    for run in runs:
        fam = families.BY_KEY[run.model]
        assert pattern.fullmatch(run.id), run.id
        assert ("/beta~" in run.id) == fam.swept
        assert vb.samplers(cfg, run) == [s for s in families.SAMPLERS if s in fam.samplers]
    for bad in ("vae/beta~4/seed~0", "beta_vae/seed~0", "gan/seed~0", "vae/seed~x"):
        assert not pattern.fullmatch(bad), bad


def test_blank_cells_come_from_the_registry():
    for (model, metric), why in families.NOT_APPLICABLE.items():
        assert why in families.BY_KEY[model].not_applicable.values()
        assert names.not_applicable_reason(model, metric) == why
