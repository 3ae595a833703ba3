"""The feature spaces beyond Inception (vaebench.metrics.spaces), against their reference
protocols, on randomly initialised stand-ins of the networks (no network here).

The protocols are checked by building the reference's input by hand into the same network:
dgm-eval's DINOv2 transform (torchvision's Resize((224, 224), BICUBIC) on a PIL image,
ToTensor, Normalize with numpy ImageNet statistics, as its DINOv2Encoder.transform writes it)
and open_clip's own preprocess for ViT-L-14-336 with OpenAI's weights (from open_clip's model
and pretrained configs, not from vaebench). CMMD is checked against google-research/cmmd's
estimator (distance.py, transcribed from JAX to NumPy below). The real jobs' files: test_outside.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from vaebench import VaebenchError
from vaebench.metrics import feature_clip, feature_dinov2, features, sets, spaces, standins
from vaebench.metrics import weights as W


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("space_weights")
    standins.write_random_weights(path, only=["dinov2_vits14", "dinov2_vitl14", "clip_vitl14_336"])
    return path


@pytest.fixture(scope="module")
def images():
    """Six smooth 64 px uint8 images (bicubic resizing of noise would be all ringing)."""
    g = torch.Generator().manual_seed(0)
    small = torch.rand((6, 3, 8, 8), generator=g)
    x = torch.nn.functional.interpolate(small, size=(64, 64), mode="bilinear")
    return (x * 255).round().to(torch.uint8).numpy()


def _pil(im):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0)))


@pytest.mark.parametrize("space", ["dinov2_vits14", "dinov2_vitl14"])
def test_dinov2_equals_dgm_evals_transform_into_the_same_timm_model(cache, images, space):
    """Bitwise: the same operations on the same images, one batch, one process."""
    import torchvision.transforms as TF

    model = feature_dinov2.load(spaces.BY_KEY[space], cache)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    by_hand = torch.stack([
        TF.Normalize(mean, std)(TF.Compose([
            TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor()])(_pil(im)))
        for im in images
    ])  # fmt: skip
    assert torch.equal(feature_dinov2.preprocess(images), by_hand)
    with torch.inference_mode():
        expected = model(by_hand).double().numpy()
    got = features.extract(space, images, cache, batch_size=len(images))
    assert got.shape == (6, standins.STANDIN_WIDTH)  # the stand-in's width, read from the file
    assert np.array_equal(got, expected)
    assert np.std(got, axis=0).max() > 0  # different images, different features


def test_clip_equals_open_clips_own_preprocess_for_vit_l_14_336(cache, images):
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    model = feature_clip.load(spaces.BY_KEY["clip_vitl14_336"], cache)
    size = open_clip.get_model_config("ViT-L-14-336")["vision_cfg"]["image_size"]
    pretrained = open_clip.get_pretrained_cfg("ViT-L-14-336", "openai")
    cfg = PreprocessCfg(size=size, **{k: pretrained[k] for k in ("mean", "std")
                                      if k in pretrained})  # fmt: skip
    reference = image_transform_v2(cfg, is_train=False)
    by_hand = torch.stack([reference(_pil(im)) for im in images])
    assert model.visual.image_size == (size, size) or model.visual.image_size == size
    assert torch.equal(feature_clip.preprocess(images, model), by_hand)
    with torch.inference_mode():
        emb = model.encode_image(by_hand)
        expected = (emb / emb.norm(dim=-1, keepdim=True)).double().numpy()
    got = features.extract("clip_vitl14_336", images, cache, batch_size=len(images))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)  # normalize's eps vs a plain /
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0)


def _cmmd_reference(x: np.ndarray, y: np.ndarray) -> float:
    """google-research/cmmd distance.py's mmd(), line for line in NumPy (float64)."""
    sigma, scale = 10, 1000
    x_sqnorms = np.diag(np.matmul(x, x.T))
    y_sqnorms = np.diag(np.matmul(y, y.T))
    gamma = 1 / (2 * sigma**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * np.matmul(x, x.T) + np.expand_dims(x_sqnorms, 1)
                                    + np.expand_dims(x_sqnorms, 0))))  # fmt: skip
    k_xy = np.mean(np.exp(-gamma * (-2 * np.matmul(x, y.T) + np.expand_dims(x_sqnorms, 1)
                                    + np.expand_dims(y_sqnorms, 0))))  # fmt: skip
    k_yy = np.mean(np.exp(-gamma * (-2 * np.matmul(y, y.T) + np.expand_dims(y_sqnorms, 1)
                                    + np.expand_dims(y_sqnorms, 0))))  # fmt: skip
    return scale * (k_xx + k_yy - 2 * k_xy)


def test_cmmd_equals_the_reference_estimator_on_fixed_embeddings():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 32))
    y = rng.normal(loc=0.3, size=(45, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    # different float64 summation orders (chunked sums vs np.mean): equal to ~1e-12 relative
    np.testing.assert_allclose(sets.cmmd(x, y), _cmmd_reference(x, y), rtol=1e-9)
    assert sets.cmmd(x, y) > 0
    assert abs(sets.cmmd(x, x)) < 1e-9  # the same set: zero


def test_every_space_is_scored_by_the_same_formulas():
    """scores() on a space is FD, KD, precision/recall, density/coverage as on Inception."""
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 8)), rng.normal(loc=0.5, size=(30, 8))
    s = sets.scores(real, fake, pr_k=3, dc_k=5, kid_subset=20, kid_n=5, seed=0, with_cmmd=True)
    assert s["fd"] == sets.frechet_distance(real, fake)
    assert (s["kd_mean"], s["kd_std"]) == sets.kid(real, fake, 20, 5, seed=0)
    assert (s["precision"], s["recall"]) == sets.precision_recall(real, fake, 3)
    assert (s["density"], s["coverage"]) == sets.density_coverage(real, fake, 5)
    assert s["cmmd"] == sets.cmmd(real, fake)
    assert np.isnan(sets.scores(real, fake, pr_k=3, dc_k=5, kid_subset=20, kid_n=5,
                                seed=0)["cmmd"])  # fmt: skip


def test_stand_ins_are_small_and_never_official(cache):
    for key in ("dinov2_vits14", "dinov2_vitl14", "clip_vitl14_336"):
        wf = W.BY_KEY[key]
        path = W.weight_path(cache, wf)
        assert path.stat().st_size < 20_000_000  # the real files: 0.1 to 1.2 GB
        assert W.check_weights(cache, (wf,))[wf.name]["official"] is False


def test_a_file_without_a_published_hash_is_official_only_as_downloaded(tmp_path, monkeypatch):
    """Meta publishes no SHA-256 for DINOv2: staging records the hash of what it downloaded
    from the file's URL, and a file changed later is no longer official."""
    payload = b"the file at Meta's URL"

    def fake_download(url, dst, *args, **kwargs):
        assert url == W.DINOV2_VITS14.url
        with open(dst, "wb") as f:
            f.write(payload)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    report = W.stage_weights(tmp_path, allow_random=False, files=(W.DINOV2_VITS14,))
    entry = report[W.DINOV2_VITS14.name]
    assert (entry["source"], entry["official"]) == ("downloaded", True)
    assert entry["sha256"] == hashlib.sha256(payload).hexdigest()
    assert W.check_weights(tmp_path, (W.DINOV2_VITS14,))[W.DINOV2_VITS14.name]["official"]
    W.weight_path(tmp_path, W.DINOV2_VITS14).write_bytes(b"changed")
    assert not W.check_weights(tmp_path, (W.DINOV2_VITS14,))[W.DINOV2_VITS14.name]["official"]
    standins.write_random_weights(tmp_path, only=["dinov2_vits14"])  # drops the record too
    assert not W.record_path(tmp_path, W.DINOV2_VITS14).exists()


def test_a_wrong_size_download_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda url, dst, **kw: open(dst, "wb").write(b"short"))  # fmt: skip
    with pytest.raises(VaebenchError, match="download failed.*bytes"):
        W.stage_weights(tmp_path, allow_random=False, files=(W.DINOV2_VITL14,))
    assert not W.weight_path(tmp_path, W.DINOV2_VITL14).exists()


def test_a_missing_space_file_names_it_and_the_staging_command(tmp_path):
    with pytest.raises(VaebenchError, match="ViT-L-14-336px.pt.*snakemake --cores 1 weights"):
        features.extract("clip_vitl14_336", np.zeros((2, 3, 64, 64), np.uint8), tmp_path)


def test_the_config_lists_spaces_from_the_registry():
    from conftest import TINY

    from vaebench import config as vb

    def with_spaces(listed):
        return {**TINY, "metrics": {**TINY["metrics"], "feature_spaces": listed}}

    cfg = vb.validate(with_spaces(["clip_vitl14_336", "inception", "dinov2_vits14"]))
    assert vb.extra_spaces(cfg) == ["dinov2_vits14", "clip_vitl14_336"]  # registry order
    assert vb.validate(TINY)["metrics"]["feature_spaces"] == ["inception"]
    for bad in (["dinov2_vits14"], ["inception", "sift"]):
        with pytest.raises(VaebenchError, match="metrics.feature_spaces"):
            vb.validate(with_spaces(bad))
