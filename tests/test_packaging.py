"""The conda environment and pyproject.toml pin the same packages at the same versions."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_env_and_pyproject_pins_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {d.split("==")[0].lower(): d.split("==")[1] for d in project["dependencies"]}
    assert all("==" in d for d in project["dependencies"]), "every dependency is pinned"
    env = yaml.safe_load((ROOT / "envs/vaebench.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {p.split("==")[0].lower(): p.split("==")[1] for p in pip if "==" in p}
    assert conda == pins
    assert "-e .." in pip, "the env installs vaebench itself"
