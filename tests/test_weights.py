"""Staging and checking the pretrained-weight files, offline (downloads are faked)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket

import pytest
import torch

from vaebench import VaebenchError
from vaebench.io import sha256_file
from vaebench.metrics import standins as S
from vaebench.metrics import weights as W


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="session")
def random_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("weights")
    S.write_random_weights(cache)
    return cache


def _copy(cache, tmp_path):
    shutil.copytree(cache, tmp_path / "cache")
    return tmp_path / "cache"


def test_stage_offline_with_allow_random_writes_small_marked_files(tmp_path, capsys):
    report = W.stage_weights(tmp_path, allow_random=True, download=False)
    assert set(report) == {wf.name for wf in W.needed()}
    for wf in W.needed():
        entry = report[wf.name]
        path = W.weight_path(tmp_path, wf)
        assert entry["path"] == str(path) and path.stat().st_size < 1_000_000
        assert entry["source"] == "random" and entry["official"] is False
        assert entry["sha256"] == sha256_file(path)
    assert "RANDOMLY INITIALISED" in capsys.readouterr().err
    # A second run keeps what is there; check_weights agrees and never downloads.
    again = W.stage_weights(tmp_path, allow_random=True, download=False)
    assert {e["source"] for e in again.values()} == {"cached"}
    checked = W.check_weights(tmp_path)
    assert {k: (v["sha256"], v["official"]) for k, v in checked.items()} == {
        k: (v["sha256"], False) for k, v in report.items()
    }


def test_stage_writes_json_report(tmp_path, random_cache):
    cache = _copy(random_cache, tmp_path)
    W.stage_weights(cache, allow_random=True, download=False, report=tmp_path / "w.json")
    assert "official" in (tmp_path / "w.json").read_text()


def test_random_weights_are_deterministic(tmp_path):
    S._random_state.cache_clear()
    a = S.write_random_weights(tmp_path / "a", seed=3, only=["alexnet"])["alexnet"]
    S._random_state.cache_clear()
    b = S.write_random_weights(tmp_path / "b", seed=3, only=["alexnet"])["alexnet"]
    c = S.write_random_weights(tmp_path / "c", seed=4, only=["alexnet"])["alexnet"]
    assert sha256_file(a) == sha256_file(b) != sha256_file(c)


def test_missing_weights_without_allow_random_name_the_file(tmp_path):
    with pytest.raises(VaebenchError, match="alexnet-owt-7be5be79.pth.*cores 1 weights") as e:
        W.stage_weights(tmp_path, allow_random=False, download=False)
    assert "\n" not in str(e.value) and W.ALEXNET.url in str(e.value)
    with pytest.raises(VaebenchError, match="alexnet-owt.*; .*pt_inception-2015-12-05-6726825d"):
        W.check_weights(tmp_path / "empty")
    S.write_random_weights(tmp_path / "half", only=["alexnet"])
    with pytest.raises(VaebenchError, match="missing .*pt_inception") as e:
        W.check_weights(tmp_path / "half")
    assert "alexnet" not in str(e.value)


def test_official_hashes_match_the_file_name_suffix():
    for wf in W.needed():
        suffix = wf.name.rsplit("-", 1)[1].split(".")[0]
        assert len(wf.sha256) == 64 and wf.sha256.startswith(suffix)


def _fake_official(monkeypatch, payload: bytes):
    """Pretend `payload` is the official content of both files (no network here)."""
    digest = hashlib.sha256(payload).hexdigest()
    files = tuple(dataclasses.replace(wf, sha256=digest) for wf in W.WEIGHT_FILES)
    monkeypatch.setattr(W, "WEIGHT_FILES", files)

    def fake_download(url, dst, *args, **kwargs):
        assert url in {wf.url for wf in files}
        with open(dst, "wb") as f:
            f.write(payload)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)


def test_download_path_verifies_and_reports_official(tmp_path, monkeypatch):
    _fake_official(monkeypatch, b"official bytes")
    report = W.stage_weights(tmp_path, allow_random=False)
    assert {(e["source"], e["official"]) for e in report.values()} == {("downloaded", True)}
    assert not [p for p in (tmp_path / "hub" / "checkpoints").iterdir() if p.name.startswith(".")]
    again = W.stage_weights(tmp_path, allow_random=False)
    assert {e["source"] for e in again.values()} == {"cached"}


def test_download_with_wrong_bytes_is_rejected(tmp_path, monkeypatch):
    _fake_official(monkeypatch, b"official bytes")
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda url, dst, **kw: open(dst, "wb").write(b"evil")
    )
    with pytest.raises(VaebenchError, match="download failed.*sha256"):
        W.stage_weights(tmp_path, allow_random=False)
    assert not any(p.is_file() for p in tmp_path.rglob("*.pth"))


def test_failed_download_falls_back_to_random_only_when_allowed(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(VaebenchError, match="no route to host"):
        W.stage_weights(tmp_path / "strict", allow_random=False)
    report = W.stage_weights(tmp_path / "demo", allow_random=True)
    assert {(e["source"], e["official"]) for e in report.values()} == {("random", False)}
    assert "no route to host" in capsys.readouterr().err


def test_non_official_file_is_refused_for_a_study(tmp_path, random_cache):
    cache = _copy(random_cache, tmp_path)
    with pytest.raises(VaebenchError, match="not the official"):
        W.stage_weights(cache, allow_random=False, download=False)


def test_garbage_file_is_reported_and_rejected_on_load(tmp_path, random_cache):
    from vaebench.metrics import feature_inception, images, spaces

    cache = _copy(random_cache, tmp_path)
    alex = W.weight_path(cache, W.ALEXNET)
    alex.write_bytes(os.urandom(1000))
    assert W.check_weights(cache)[W.ALEXNET.name]["official"] is False
    with pytest.raises(VaebenchError, match=f"{alex}.*could not be loaded.*cores 1 weights"):
        images.load_lpips(cache)
    # A valid checkpoint of the wrong network is rejected just as clearly.
    shutil.copy(W.weight_path(cache, W.INCEPTION), alex)
    with pytest.raises(VaebenchError, match="could not be loaded as the LPIPS"):
        images.load_lpips(cache)
    W.weight_path(cache, W.INCEPTION).write_bytes(b"\x00" * 64)
    with pytest.raises(VaebenchError, match="could not be loaded as the FID Inception"):
        feature_inception.load(spaces.BY_KEY["inception"], cache)


def test_loading_never_downloads_and_restores_torch_hub(tmp_path, random_cache, monkeypatch):
    from vaebench.metrics import images

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    before = torch.hub.get_dir()
    with pytest.raises(VaebenchError, match="missing pretrained weights.*alexnet"):
        images.load_lpips(tmp_path / "empty")
    model = images.load_lpips(random_cache)
    assert not model.training
    assert torch.hub.get_dir() == before and os.environ["TORCH_HOME"] == str(tmp_path / "elsewhere")


class _Payload:
    """Unpickling this runs code: what a weights_only load must refuse."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_weight_files_are_loaded_weights_only(tmp_path, random_cache, monkeypatch):
    from vaebench.metrics import images

    cache = _copy(random_cache, tmp_path)
    monkeypatch.chdir(tmp_path)
    torch.save({"features.0.weight": _Payload()}, W.weight_path(cache, W.ALEXNET))
    with pytest.raises(VaebenchError, match="could not be loaded as the LPIPS"):
        images.load_lpips(cache)
    assert not (tmp_path / "pwned").exists()
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ  # restored after loading
