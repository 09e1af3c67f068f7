"""Parity with the official Gaze-LLE and DINOv2 hub code, on the fixture it produced
(../shared/fixtures/gazelle: a depth-2 ViT-S/14 backbone and an in/out decoder, seeded)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gaze_perception.core.weights import WeightsError  # noqa: E402
from gaze_perception.metrics import gaze_following as gm  # noqa: E402
from gaze_perception.models.dinov2 import create_dinov2  # noqa: E402
from gaze_perception.models.gazelle import (GazeLLEDecoder, create_gazelle, head_maps,  # noqa: E402
                                            load_decoder_state_dict, positional_encoding_2d,
                                            preprocess)


@pytest.fixture(scope="module")
def fx(shared_dir):
    root = shared_dir / "fixtures" / "gazelle"
    io = np.load(root / "io.npz")
    return {
        "root": root,
        "io": {k: io[k] for k in io.files},
        "boxes": json.loads((root / "meta.json").read_text())["head_boxes_normalised_xyxy"],
        "decoder": torch.load(root / "gazelle_decoder_inout.pt", weights_only=True),
        "cases": json.loads((root / "metric_cases.json").read_text()),
    }


@pytest.fixture(scope="module")
def model(fx):
    root = fx["root"]
    return create_gazelle("vits14_depth2", root / "dinov2_backbone_hub_format.pth",
                          root / "gazelle_decoder_inout.pt")


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def test_preprocessing_equals_official(fx):
    x = preprocess([fx["io"]["image0"], fx["io"]["image1"]])
    assert x.shape == (2, 3, 448, 448)
    assert _max_diff(x, fx["io"]["input_tensor"]) <= 1e-4


def test_backbone_equals_hub_patch_features(fx):
    backbone = create_dinov2("vits14", fx["root"] / "dinov2_backbone_hub_format.pth", depth=2)
    with torch.inference_mode():
        feats = backbone.forward_patch_features(torch.from_numpy(fx["io"]["input_tensor"]))
    assert feats.shape == (2, 384, 32, 32)
    assert _max_diff(feats, fx["io"]["backbone_patch_features"]) <= 1e-4


def test_heatmaps_and_inout_equal_official(fx, model):
    with torch.inference_mode():
        out = model(torch.from_numpy(fx["io"]["input_tensor"]), fx["boxes"])
    assert out.counts == [3, 1]
    for i, (heat, inout) in enumerate(out.per_image()):
        assert _max_diff(heat, fx["io"][f"heatmaps{i}"]) <= 1e-4
        assert _max_diff(inout, fx["io"][f"inout{i}"]) <= 1e-4


def test_decoder_state_dict_is_the_published_format(fx, model):
    published = fx["decoder"]
    ours = model.decoder.state_dict()
    assert sorted(ours) == sorted(published) and len(ours) == 45
    assert _max_diff(positional_encoding_2d(256, 32, 32), published["pos_embed"]) <= 1e-5


def test_head_map_rounds_half_to_even_and_excludes_the_end():
    maps = head_maps([(2.5 / 32, 0.0, 5.5 / 32, 1 / 32), None], grid=32)
    # round(2.5) = 2 and round(5.5) = 6: columns 2..5 of row 0.
    assert maps[0].nonzero().tolist() == [[0, c] for c in range(2, 6)]
    assert maps[1].sum() == 0


def test_strict_decoder_load_names_missing_keys(fx):
    partial = {k: v for k, v in fx["decoder"].items() if not k.startswith("transformer.2.mlp")}
    with pytest.raises(WeightsError, match=r"missing keys: transformer\.2\.mlp\.fc1\.bias"):
        load_decoder_state_dict(GazeLLEDecoder(384, inout=True), partial)


def test_decoder_without_inout_keys_loads_without_inout_head(fx):
    plain = {k: v for k, v in fx["decoder"].items() if not k.startswith("inout_")}
    assert len(plain) == 40
    m = create_gazelle("vits14_depth2", decoder_weights=plain)
    assert not m.decoder.inout and not hasattr(m.decoder, "inout_head")
    with pytest.raises(WeightsError, match="inout_head.0.weight"):
        create_gazelle("vits14_depth2", decoder_weights=plain, inout=True)


def test_decoder_for_another_backbone_size_is_refused(fx):
    with pytest.raises(WeightsError, match="384-dim backbone.*768-dim"):
        load_decoder_state_dict(GazeLLEDecoder(768, inout=True), fx["decoder"])


def test_metrics_reproduce_official_values(fx):
    for case in fx["cases"]:
        heat = np.asarray(case["heatmap"], dtype=np.float32)
        auc = gm.gazefollow_auc(heat, case["gt_x"], case["gt_y"], case["width"], case["height"])
        avg_l2, min_l2 = gm.gazefollow_l2(heat, case["gt_x"], case["gt_y"])
        assert abs(auc - case["gazefollow_auc"]) <= 1e-6
        assert abs(avg_l2 - case["gazefollow_avg_l2"]) <= 1e-6
        assert abs(min_l2 - case["gazefollow_min_l2"]) <= 1e-6
        assert abs(gm.vat_auc(heat, case["vat_gt_x"], case["vat_gt_y"]) - case["vat_auc"]) <= 1e-6
        assert abs(gm.vat_l2(heat, case["vat_gt_x"], case["vat_gt_y"]) - case["vat_l2"]) <= 1e-6


def test_inout_ap_step_definition():
    # Ranked: + - + + -  ->  AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4
    ap = gm.inout_ap([1, 0, 1, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.2])
    assert ap == pytest.approx(1 / 3 + 2 / 9 + 1 / 4, abs=1e-12)


def test_rank_metrics_equal_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500), 2)  # many ties
    assert gm.roc_auc(labels, scores) == pytest.approx(
        metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert gm.inout_ap(labels, scores) == pytest.approx(
        metrics.average_precision_score(labels, scores), abs=1e-12)


def test_backbone_with_registers_takes_the_hub_layout(fx):
    hub = torch.load(fx["root"] / "dinov2_backbone_hub_format.pth", weights_only=True)
    hub["register_tokens"] = torch.randn(1, 4, 384)
    backbone = create_dinov2("vits14", hub, depth=2, registers=4)
    with torch.inference_mode():
        feats = backbone.forward_patch_features(torch.zeros(1, 3, 224, 280))
    assert feats.shape == (1, 384, 16, 20)
