"""Config validation (one-line errors naming the key) and the config -> run table logic."""

import copy

import pytest
import yaml

from vaebench import VaebenchError, schema
from vaebench import config as vb

BASE = {
    "dataset": {"name": "shapes"},
    "models": ["vae", "beta_vae", "vqvae", "vaegan"],
    "betas": [0.5, 1, 4],
    "seeds": [0],
}


def with_(path: str, value):
    cfg = copy.deepcopy(BASE)
    node = cfg
    *parents, last = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return cfg


@pytest.mark.parametrize(
    "path, value, key",
    [
        ("betas", [0.5, -1], "betas[1]"),
        ("betas", [0], "betas[0]"),
        ("betas", [], "betas"),
        ("seeds", [], "seeds"),
        ("models", ["vae", "gan"], "models[1]"),
        ("dataset.name", "mnist", "dataset.name"),
        ("dataset.n_train", "many", "dataset.n_train"),
        ("dataset.n_test", 0, "dataset.n_test"),
        ("training.epochs", 1.5, "training.epochs"),
        ("network.preset", "huge", "network.preset"),
        ("metrics.ms_ssim.scales", 9, "metrics.ms_ssim.scales"),
        ("weights.allow_random", "yes", "weights.allow_random"),
    ],
)
def test_schema_errors_are_one_line_and_name_the_key(path, value, key):
    with pytest.raises(VaebenchError) as err:
        vb.validate(with_(path, value))
    msg = str(err.value)
    assert "\n" not in msg
    assert repr(key) in msg


def test_unknown_key_is_named_with_the_allowed_ones():
    with pytest.raises(VaebenchError, match=r"unknown key 'training.epoch'.*epochs"):
        vb.validate(with_("training.epoch", 3))


def test_missing_root_for_celeba():
    with pytest.raises(VaebenchError, match="dataset.root"):
        vb.validate(with_("dataset.name", "celeba"))


def test_defaults_are_filled_under_given_parents():
    cfg = vb.validate(with_("training.epochs", 3))
    assert cfg["training"]["batch_size"] == 64
    assert cfg["sampling"]["gmm"]["n_components"] == 10
    assert cfg["metrics"]["ms_ssim"] == {"kernel": 11, "scales": 3}


def test_shipped_configs_validate():
    for path in ["config.yaml", "workflow/configs/demo.yaml"]:
        with open(path) as f:
            vb.validate(yaml.safe_load(f), source=path)


def test_run_table_ids_and_order():
    cfg = vb.validate(BASE)
    ids = [r.id for r in vb.runs(cfg)]
    assert ids == [
        "beta_vae/beta~0.5/seed~0",
        "vae/seed~0",  # also the sweep's β = 1 point: VAE is β-VAE at β = 1, trained once
        "beta_vae/beta~4/seed~0",
        "vqvae/seed~0",
        "vaegan/seed~0",
    ]
    assert {r.model: r.beta for r in vb.runs(cfg)}["vqvae"] is None
    assert vb.runs(cfg)[1].label == "VAE (β = 1)" and vb.runs(cfg)[1].beta == 1.0


def test_vae_and_beta_one_train_once_only_when_both_are_asked_for():
    def ids(**kw):
        return [r.id for r in vb.runs(vb.validate({**BASE, **kw}))]

    assert "beta_vae/beta~1/seed~0" in ids(models=["beta_vae"])  # no VAE: β = 1 is its own run
    assert "beta_vae/beta~1/seed~0" not in ids(models=["vae", "beta_vae"])
    only_vae = vb.runs(vb.validate({**BASE, "models": ["vae"]}))
    assert [r.label for r in only_vae] == ["VAE"]
    sweep = vb.runs(vb.validate({**BASE, "betas": [4]}))  # VAE is the sweep's β = 1 anyway
    assert [r.label for r in sweep][:2] == ["VAE (β = 1)", "β-VAE β=4"]
    seeds = vb.runs(vb.validate({**BASE, "seeds": [1, 0]}))
    assert [r.id for r in seeds][:4] == ["beta_vae/beta~0.5/seed~0", "beta_vae/beta~0.5/seed~1",
                                         "vae/seed~0", "vae/seed~1"]  # fmt: skip


def test_params_do_not_depend_on_list_order_and_are_per_job():
    a = vb.validate(BASE)
    b = vb.validate(
        {**BASE, "betas": [4, 1, 0.5], "models": ["vaegan", "vqvae", "beta_vae", "vae"]}
    )
    for ra, rb in zip(vb.runs(a), vb.runs(b), strict=True):
        assert vb.train_params(a, ra) == vb.train_params(b, rb)
        for s in vb.samplers(a, ra):
            assert vb.sampler_params(a, ra, s) == vb.sampler_params(b, rb, s)
    vq = vb.run_by_id(a, "vqvae/seed~0")
    assert "vaegan" not in vb.train_params(a, vq)
    assert "reconstruction_loss" not in vb.train_params(a, vq)["training"]


def test_samplers_per_family():
    cfg = vb.validate(BASE)
    got = {r.model: vb.samplers(cfg, r) for r in vb.runs(cfg)}
    assert got == {
        "vae": ["normal", "gmm"],
        "beta_vae": ["normal", "gmm"],
        "vqvae": ["gmm", "pixelcnn"],
        "vaegan": ["normal", "gmm"],
    }


def test_config_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import vaebench.config, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _violations(schema: dict, path: tuple = ()):
    """(dotted key, bad value) for every constraint of every leaf of the schema."""
    if schema.get("type") == "object" and "properties" in schema:
        for name, sub in schema["properties"].items():
            yield from _violations(sub, (*path, name))
        return
    key = ".".join(path)
    if "enum" in schema:
        yield key, "not-a-choice"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds or "number" in kinds:
        yield key, "text"
        if "minimum" in schema:
            yield key, schema["minimum"] - 1
        if "exclusiveMinimum" in schema:
            yield key, schema["exclusiveMinimum"]
        if "maximum" in schema:
            yield key, schema["maximum"] + 1
    if "integer" in kinds and "number" not in kinds:
        yield key, 1.5
    if kind == "boolean":
        yield key, "yes"
    if kind == "string":
        yield key, 3
    if kind == "array":
        yield key, "not-a-list"
        if schema.get("minItems"):
            yield key, []
        if schema.get("uniqueItems") and "enum" in schema.get("items", {}):
            first = schema["items"]["enum"][0]
            yield key, [first, first]
        for _, v in _violations(schema.get("items", {}), ()):
            yield key, [v]


SCHEMA_VIOLATIONS = list({repr(v): v for v in _violations(schema.load())}.values())


def test_the_schema_walk_covers_the_schema():
    keys = {k for k, _ in SCHEMA_VIOLATIONS}
    assert len(SCHEMA_VIOLATIONS) > 60
    assert {"betas", "seeds", "models", "dataset.n_train", "metrics.kid.subset_size"} <= keys


@pytest.mark.parametrize("key, value", SCHEMA_VIOLATIONS, ids=repr)
def test_every_schema_rule_gives_one_line_naming_its_key(key, value):
    with pytest.raises(VaebenchError) as err:
        vb.validate(with_(key, value))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("config: key ")
    assert f"'{key}" in msg  # the key itself, or one of its items (betas[0])


def test_sizes_the_networks_cannot_take_are_refused_when_the_config_is_read():
    base = {"dataset": {"name": "shapes"}, "models": ["vae"], "seeds": [0]}
    for size, preset, hint in ((63, "small", "a multiple of 16"), (32, "celeba64", "needs 64"),
                               (100000, "small", "maximum of 512")):  # fmt: skip
        cfg = {**base, "dataset": {"name": "shapes", "image_size": size},
               "network": {"preset": preset}}  # fmt: skip
        with pytest.raises(VaebenchError, match="dataset.image_size") as err:
            vb.validate(cfg)
        assert hint in str(err.value) and "\n" not in str(err.value)
    vb.validate({**base, "dataset": {"name": "shapes", "image_size": 48},
                 "network": {"preset": "small"}})  # fmt: skip


def test_kid_subsets_larger_than_the_sets_are_said_at_parse_time():
    from vaebench import terminal

    cfg = vb.validate({"dataset": {"name": "shapes", "n_reference": 64}, "models": ["vae"],
                       "seeds": [0], "sampling": {"n_samples": 32}})  # fmt: skip
    line = terminal.kid_warning(cfg)
    assert "metrics.kid.subset_size 100" in line and "at most 32" in line
    cfg["metrics"]["kid"]["subset_size"] = 32
    assert terminal.kid_warning(cfg) is None


def test_removed_keys_say_why_and_what_to_do():
    cfg = {"dataset": {"name": "shapes"}, "models": ["vae"], "seeds": [0],
           "metrics": {"n_boot_comparisons": 10000}}  # fmt: skip
    with pytest.raises(VaebenchError, match="metrics.n_boot_comparisons' was removed.*delete it"):
        vb.validate(cfg)


def test_bf16_is_refused_where_it_would_not_be_applied_or_correct():
    def cfg(models, loss):
        return {"dataset": {"name": "shapes"}, "models": models, "seeds": [0],
                "training": {"bf16_autocast": True, "reconstruction_loss": loss}}  # fmt: skip

    for models, loss, named in ((["vae"], "bce", "VAE (CUDA autocast refuses its BCE"),
                                (["vaegan"], "mse", "VAE-GAN (its coupled_adversarial"),
                                (["vqvae"], "mse", "VQ-VAE (its nearest-code search"),
                                (["ae", "factor_vae"], "mse", "FactorVAE")):  # fmt: skip
        with pytest.raises(VaebenchError, match="training.bf16_autocast") as err:
            vb.validate(cfg(models, loss))
        assert named in str(err.value) and "\n" not in str(err.value)
    vb.validate(cfg(["vae", "beta_vae", "ae"], "mse"))  # base trainer, MSE: applied as asked
