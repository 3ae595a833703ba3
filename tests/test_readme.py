"""The README's commands run as written: every `snakemake` command of its code blocks is
dry-run (`-n`) in a fresh copy of the workflow, as a user with the activated .venv runs it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e

# Commands that need what a dry run cannot give: a SLURM controller (profiles), a finished
# study (--report), a lock to remove (--unlock).
NEEDS_MORE = ("--workflow-profile", "--profile", "--report", "--unlock")


def readme_commands() -> list[str]:
    """The `snakemake ...` lines of the README's indented code blocks, comments dropped."""
    out = []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^    (snakemake .*?)\s*(#.*)?$", line)
        if m:
            out.append(m.group(1))
    return out


def test_the_readme_says_how_snakemake_gets_on_the_path():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in text.split("## The study")[0]
    assert len(readme_commands()) >= 3


@pytest.mark.parametrize("command", [c for c in readme_commands() if not c.startswith(
    tuple(f"snakemake {o}" for o in NEEDS_MORE)) and not any(o in c for o in NEEDS_MORE)])
def test_readme_command_dry_runs(command, tmp_path):
    for part in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / part, tmp_path / part)
    shutil.copytree(ROOT / "workflow", tmp_path / "workflow")
    args = shlex.split(command)[1:]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["snakemake", *args, "-n"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    assert "vaebench: study" in out.stderr  # the workflow parsed the config and planned


def test_the_end_of_run_hint_names_a_snakemake_that_runs(monkeypatch):
    from vaebench.terminal import snakemake_command

    monkeypatch.setenv("PATH", "/nonexistent")  # not activated: the hint gives the path
    hint = snakemake_command()
    assert hint != "snakemake" and Path(hint).resolve() == Path(sys.executable).parent.joinpath(
        "snakemake").resolve()  # fmt: skip
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # activated: the bare name
    assert snakemake_command() == "snakemake"


def test_a_run_without_tables_does_not_point_at_them(tmp_path, monkeypatch):
    from vaebench import config as vb
    from vaebench.terminal import summary

    monkeypatch.chdir(tmp_path)
    cfg = vb.validate({"dataset": {"name": "shapes"}, "models": ["vae"], "seeds": [0]})
    lines = summary(cfg, [])
    assert len(lines) == 1 and "not built yet" in lines[0] and "tables/" not in lines[0]
