"""The compared table's input: published values read from a CSV, checked line by line.

The table itself, built from a real Snakemake run's tables, is tested in test_all_families.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaebench import VaebenchError, comparison
from vaebench import config as vb

HEADER = "model,beta,metric,sampler,value,source\n"


def _write(tmp_path, text: str):
    path = tmp_path / "published.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("vea,,mse,,0.01,x\n", "line 2: unknown model 'vea'"),
        ("vae,,fidd,normal,50,x\n", "line 2: unknown metric 'fidd'"),
        ("vae,,mse,gmm,0.01,x\n", "line 2: mse is a reconstruction metric: leave sampler empty"),
        ("vae,,fid,,50,x\n", "line 2: fid needs a sampler"),
        ("vae,,fid,normal,fifty,x\n", "line 2: value 'fifty' is not a finite number"),
        ("vae,,fid,normal,nan,x\n", "line 2: value 'nan' is not a finite number"),
        ("beta_vae,four,mse,,0.01,x\n", "line 2: beta 'four' is not a finite number"),
        ("vae,,mse,,0.01,x\nvae,,mse,,0.02,y\n", "line 3: the same model, beta, metric and"),
        ("vae,,mse,,0.01,x,extra\n", "line 2: 7 fields, the header has 6"),
        ("\n\nvae,,mse,,0.01,x\n\nvea,,mse,,0.01,x\n", "line 6: unknown model 'vea'"),
        ("", "no values below the header"),
    ],
)
def test_a_bad_line_is_one_line_naming_the_file_and_line(tmp_path, body, says):
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(VaebenchError) as err:
        comparison.read_published(path)
    msg = str(err.value)
    assert "\n" not in msg and f"compare_to.file {path}" in msg and says in msg


def test_an_empty_file_is_one_line(tmp_path):
    with pytest.raises(VaebenchError, match=r"columns must be model, metric, sampler, value"):
        comparison.read_published(_write(tmp_path, ""))


def test_missing_or_unknown_columns_are_named(tmp_path):
    path = _write(tmp_path, "model,metric,value,paper\nvae,mse,0.01,x\n")
    with pytest.raises(VaebenchError, match=r"missing \['sampler'\], unknown \['paper'\]"):
        comparison.read_published(path)


def test_optional_columns_and_spaces(tmp_path):
    text = "model, metric, sampler, value\nvae, mse, , 0.5\nvae, fid, gmm, 40\n"
    pub = comparison.read_published(_write(tmp_path, text))
    assert list(pub["value"]) == [0.5, 40.0] and pub["beta"].isna().all()
    assert pub["sampler"].isna().tolist() == [True, False] and pub["sampler"][1] == "gmm"
    assert pub["source"].tolist() == ["", ""]


def test_a_missing_file_is_a_config_error_naming_the_key(tmp_path):
    cfg = {"dataset": {"name": "shapes"}, "models": ["vae"], "seeds": [0]}
    assert vb.compare_outputs(vb.validate(cfg)) == []
    with pytest.raises(VaebenchError, match=r"key 'compare_to.file': no file .*nope.csv"):
        vb.validate({**cfg, "compare_to": {"file": str(tmp_path / "nope.csv")}})


def test_beta_picks_the_sweep_point_and_other_families_get_a_note(tmp_path):
    lines = "beta_vae,4,mse,,0.2,T1\nbeta_vae,8,mse,,0.3,T1\niwae,,mse,,0.1,T1\n"
    pub = comparison.read_published(_write(tmp_path, HEADER + lines))
    recon = pd.DataFrame({
        "model": ["beta_vae", "beta_vae"], "beta": [4.0, 16.0], "label": ["β4", "β16"],
        "mse": [0.25, 0.35], "mse_lo": [0.2, 0.3], "mse_hi": [0.3, 0.4], "n_images": [10, 10],
        "diverged": [False, False], "weights_official": [True, True],
    })  # fmt: skip
    gen = pd.DataFrame(columns=["label", "sampler", "fid"])
    table = comparison.comparison_table(recon, gen, pub, "Paper")
    assert table["published"].tolist()[0] == 0.2 and np.isnan(table["published"].tolist()[1])
    notes = " ".join(table.attrs["footnotes"])
    assert "families this study did not run: IWAE" in notes and "'Paper' is blank" in notes
    assert "Line(s) 3 of the file match no row of this study" in notes  # β = 8 is not run
    diverged = recon.assign(diverged=[False, True], mse=[0.25, np.nan])
    notes = comparison.comparison_table(diverged, gen, pub, "Paper").attrs["footnotes"]
    assert "Every run of β16 diverged: no numbers of this study." in notes


def test_stand_in_masking_leaves_blank_cells_blank(tmp_path):
    from vaebench.cells import mask_stand_in

    df = pd.DataFrame({"label": ["a", "b"], "metric": ["fid", "fid"], "sampler": ["gmm"] * 2,
                       "measured": [30.0, np.nan], "published": [40.0, 41.0]})  # fmt: skip
    out = mask_stand_in(df)
    assert out["measured"].tolist()[0] == "n/a (stand-in weights)"
    assert pd.isna(out["measured"].tolist()[1]) and out["published"].tolist() == [40.0, 41.0]
