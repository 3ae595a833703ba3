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
    if config["dataset"]["name"] != "shapes" and not config["dataset"]["root"]:
        raise VaebenchError(
            f"{source}: key 'dataset.root' must name the folder of the "
            f"{config['dataset']['name']} dataset"
        )
    return config


def _fill_defaults(instance: Any, schema: dict) -> None:
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return
    for name, sub in schema.get("properties", {}).items():
        if name not in instance and "default" in sub:
            instance[name] = json.loads(json.dumps(sub["default"]))
        if name in instance:
            _fill_defaults(instance[name], sub)
