"""The config file's schema (workflow/schemas/config.schema.yaml) and its validation.

The lists the schema cannot know, the model families and samplers, and the sections of
families registered from outside come from the family registry (vaebench.families). Every
error is one line naming the offending key (VaebenchError).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, families
from vaebench.metrics import spaces

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@cache
def load() -> dict:
    """The config schema, with its `models` list filled in from the family registry."""
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text())
    props = schema["properties"]
    props["models"]["items"]["enum"] = list(families.MODEL_ORDER)
    props["sampling"]["properties"]["samplers"]["items"]["enum"] = list(families.SAMPLERS)
    props["sampling"]["properties"]["samplers"]["default"] = list(families.SAMPLERS)
    spaces_prop = props["metrics"]["properties"]["feature_spaces"]
    spaces_prop["items"]["enum"] = list(spaces.KEYS)
    spaces_prop["contains"] = {"const": spaces.INCEPTION}
    for fam in families.REGISTRY:  # families registered outside the registry file
        if fam.key not in props and fam.schema is not None:
            props[fam.key] = {"default": {}, **fam.schema}
    return schema


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


# Keys that configs of earlier versions may hold: why each went, and what to do instead.
REMOVED = {
    "metrics.n_boot_comparisons": "paired comparisons no longer bootstrap (their p-values use "
    "Student t over seeds and images, see the README's 'What the numbers mean'); delete it",
}


def validate(
    config: dict[str, Any], source: str = "config", configfiles: list[str] | None = None
) -> dict[str, Any]:
    """Check `config` against the schema, fill in defaults, return a new dict.

    Raises VaebenchError with one line naming the offending key. Defaults are filled for
    every object the schema describes, also where the user gave the parent (unlike
    snakemake.utils.validate, which fills only under `default: {}` parents). A config without
    `study` is named after its (last) config file, e.g. `pilot.yaml` -> study `pilot`.
    """
    import jsonschema

    config = json.loads(json.dumps(config))  # plain types, a private copy
    if "study" not in config and configfiles:
        config["study"] = Path(configfiles[-1]).stem
    schema = load()
    _fill_defaults(config, schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        key = _key(err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            gone = REMOVED.get(_key([*err.absolute_path, extra[0]]))
            if gone:
                raise VaebenchError(f"{source}: key {_key([*err.absolute_path, extra[0]])!r} "
                                    f"was removed: {gone}")  # fmt: skip
            allowed = ", ".join(err.schema.get("properties", {}))
            raise VaebenchError(
                f"{source}: unknown key {_key([*err.absolute_path, extra[0]])!r}; "
                f"allowed under {key}: {allowed}"
            )
        if err.validator == "contains":  # metrics.feature_spaces without Inception
            raise VaebenchError(f"{source}: key {key!r} must list "
                                f"{err.validator_value['const']!r} (the generation table's "
                                f"FID, KID, ...); add it to {err.instance}")  # fmt: skip
        raise VaebenchError(f"{source}: key {key!r}: {err.message}")
    published = config["compare_to"]["file"]
    if published and not Path(published).is_file():
        raise VaebenchError(
            f"{source}: key 'compare_to.file': no file {published}; give the CSV of published "
            "values (see the README's 'Comparing with published numbers') or remove the key"
        )
    if published:  # checked now, not hours later in the compare job
        from vaebench.comparison import read_published

        read_published(published)
    size, preset = config["dataset"]["image_size"], config["network"]["preset"]
    if (preset == "celeba64" and size != 64) or size % 16:
        need = "64" if preset == "celeba64" else "a multiple of 16 (16, 32, 48, 64, ...)"
        raise VaebenchError(
            f"{source}: key 'dataset.image_size' is {size}, but network.preset {preset!r} "
            f"needs {need}: set dataset.image_size to that"
        )
    if config["training"]["bf16_autocast"]:
        _check_bf16(config, source)
    if config["publish"]["runs"]:  # patterns that match no run: said now, in one line
        from vaebench.config import publish_outputs, runs

        try:
            publish_outputs(config, runs(config))
        except VaebenchError as err:
            raise VaebenchError(f"{source}: {err}") from None
    if config["dataset"]["name"] != "shapes" and not config["dataset"]["root"]:
        raise VaebenchError(
            f"{source}: key 'dataset.root' must name the folder of the "
            f"{config['dataset']['name']} dataset"
        )
    return config


def _check_bf16(config: dict[str, Any], source: str) -> None:
    """training.bf16_autocast only where it is applied and correct, never recorded and not
    applied: only Pythae's base trainer enters its autocast context (the adversarial and
    coupled-optimizer ones never do), CUDA autocast refuses F.binary_cross_entropy (the BCE
    loss), and VQ-VAE's nearest-code search in bf16 picks other codes."""
    why = []
    for key in config["models"]:
        fam = families.BY_KEY[key]
        if fam.trainer != "base":
            why.append(f"{fam.label} (its {fam.trainer} trainer never enters Pythae's autocast)")
        elif fam.encoder == "vector_quantised":
            why.append(f"{fam.label} (its nearest-code search must stay in fp32)")
        elif fam.reconstruction_loss and config["training"]["reconstruction_loss"] == "bce":
            why.append(f"{fam.label} (CUDA autocast refuses its BCE loss)")
    if why:
        raise VaebenchError(
            f"{source}: key 'training.bf16_autocast' is true, but bf16 would not be applied "
            f"as configured for {'; '.join(why)}: set it to false, or train those families "
            "in a study of their own (MSE losses where a family takes one)"
        )


def _fill_defaults(instance: Any, schema: dict) -> None:
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return
    for name, sub in schema.get("properties", {}).items():
        if name not in instance and "default" in sub:
            instance[name] = json.loads(json.dumps(sub["default"]))
        if name in instance:
            _fill_defaults(instance[name], sub)
