"""The `gazelle` backend on the parity fixture's weights (tiny depth-2 ViT-S backbone)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gaze_perception.backends.gazelle import GazeLLEBackend  # noqa: E402
from gaze_perception.core.types import Face  # noqa: E402
from gaze_perception.core.weights import WeightsError  # noqa: E402
from gaze_perception.models.gazelle import GazeLLEDecoder, head_maps  # noqa: E402


@pytest.fixture(scope="module")
def fx(shared_dir):
    root = shared_dir / "fixtures" / "gazelle"
    io = np.load(root / "io.npz")
    meta = json.loads((root / "meta.json").read_text())
    images = [io["image0"], io["image1"]]
    faces = []
    for image, boxes in zip(images, meta["head_boxes_normalised_xyxy"]):
        h, w = image.shape[:2]
        faces.append([Face.from_xyxy(x0 * w, y0 * h, x1 * w, y1 * h, track_id=10 + j)
                      for j, (x0, y0, x1, y1) in enumerate(boxes)])
    return {"root": root, "io": io, "images": images, "faces": faces}


@pytest.fixture(scope="module")
def backend(fx):
    return GazeLLEBackend(variant="vits14_depth2", device="cpu", heatmaps=True, precision="fp32",
                          backbone_weights=str(fx["root"] / "dinov2_backbone_hub_format.pth"),
                          decoder_weights=str(fx["root"] / "gazelle_decoder_inout.pt"))


@pytest.fixture(scope="module")
def both_frames(fx, backend):
    return backend.estimate(fx["images"], fx["faces"])


def test_points_are_the_fixture_argmax_in_pixels(fx, both_frames):
    for i, (image, targets) in enumerate(zip(fx["images"], both_frames)):
        h, w = image.shape[:2]
        heat = fx["io"][f"heatmaps{i}"]
        assert [t.face_index for t in targets] == list(range(len(heat)))
        for t, ref, inout, face in zip(targets, heat, fx["io"][f"inout{i}"], fx["faces"][i]):
            row, col = np.unravel_index(np.argmax(ref), ref.shape)
            assert t.point == pytest.approx((col / 64 * w, row / 64 * h))
            assert np.abs(t.heatmap - ref).max() <= 1e-4
            assert t.inout == pytest.approx(float(inout), abs=1e-4)
            assert t.track_id == face.track_id
            # The fixture's in/out is ~0.43, below the default 0.5 threshold: point kept, score 0.
            assert t.score == 0.0


def test_frames_with_different_head_counts_batch_like_single_calls(fx, backend, both_frames):
    img0, img1 = fx["images"]
    f0, f1 = fx["faces"]
    batched = backend.estimate([img1, img0, img1, img0], [f1, f0[:2], [], f0[2:]])
    singles = [both_frames[1], backend.estimate([img0], [f0[:2]])[0], [],
               backend.estimate([img0], [f0[2:]])[0]]
    assert [len(b) for b in batched] == [1, 2, 0, 1]
    for got, want in zip(batched, singles):
        for a, b in zip(got, want):
            assert np.abs(a.heatmap - b.heatmap).max() <= 1e-5
            assert a.point == b.point and a.inout == pytest.approx(b.inout, abs=1e-5)


def test_score_is_heatmap_max_when_inout_passes(fx):
    backend = GazeLLEBackend(variant="vits14_depth2", device="cpu", inout_threshold=0.0,
                             subpixel=True, precision="fp32",
                             backbone_weights=str(fx["root"] / "dinov2_backbone_hub_format.pth"),
                             decoder_weights=str(fx["root"] / "gazelle_decoder_inout.pt"))
    (target,) = backend.estimate([fx["images"][1]], [fx["faces"][1]])[0]
    heat = fx["io"]["heatmaps1"][0]
    assert target.score == pytest.approx(float(heat.max()), abs=1e-4)
    assert target.heatmap is None
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    # Sub-pixel points stay within the argmax cell.
    x, y = (v / 360 * 64 for v in target.point)
    assert col <= x <= col + 1 and row <= y <= row + 1


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(WeightsError, match=r"weights fetch dinov2_vitb14_pretrain --from FILE"):
        GazeLLEBackend(variant="vitb14", weights_dir=tmp_path, device="cpu")
    with pytest.raises(WeightsError, match="nowhere.pt"):
        GazeLLEBackend(variant="vitb14", backbone_weights=str(tmp_path / "nowhere.pt"),
                       device="cpu")


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        GazeLLEBackend(variant="vitb14", device="cpu", precision="fp16", weights_dir=tmp_path)


def test_bf16_runs_on_cpu_and_stays_close(fx, both_frames):
    backend = GazeLLEBackend(variant="vits14_depth2", device="cpu", precision="bf16", heatmaps=True,
                             backbone_weights=str(fx["root"] / "dinov2_backbone_hub_format.pth"),
                             decoder_weights=str(fx["root"] / "gazelle_decoder_inout.pt"))
    (target,) = backend.estimate([fx["images"][1]], [fx["faces"][1]])[0]
    assert target.heatmap.dtype == np.float32
    fp32 = both_frames[1][0]
    assert np.abs(target.heatmap - fp32.heatmap).max() < 0.05
    # the heatmap's last linear map stays fp32, so bf16 rounding does not tie pixels at the peak
    assert target.point == fp32.point
    # matmul weights stored bf16; norms and the position embedding (the residual stream) fp32
    backbone = backend.model.backbone
    dtypes = {name: p.dtype for name, p in backbone.named_parameters()}
    assert {d for n, d in dtypes.items() if ".qkv." in n or ".fc1." in n} == {torch.bfloat16}
    assert {d for n, d in dtypes.items() if "norm" in n or "pos_embed" in n} == {torch.float32}


def test_bf16_heatmaps_keep_fp32_resolution():
    """Under bf16 autocast the heatmap's last linear map runs in fp32: a bf16 heatmap has only
    256 levels in [0.5, 1), so neighbouring pixels tie and the argmax moves (the benchmark saw
    24 of 51 heads move with random ViT-B weights before this)."""
    torch.manual_seed(0)
    decoder = GazeLLEDecoder(64, dim=32).eval()
    maps = head_maps([(0.1, 0.1, 0.3, 0.3), (0.5, 0.2, 0.7, 0.4)], decoder.grid)
    features = torch.randn(1, 64, decoder.grid, decoder.grid)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        heat, _ = decoder(features, maps, [2])
    assert heat.dtype == torch.float32 and heat.shape == (2, 64, 64)
    levels = [len(torch.unique(h)) for h in heat]
    assert min(levels) > 1000, levels


@pytest.mark.parametrize("inout", [False, True])
def test_shared_first_block_equals_running_it_per_head(inout):
    """Inference shares the first block's prompt-free work among a frame's heads; the result is
    the per-head computation's: two frames, small, overlapping, large and missing boxes."""
    torch.manual_seed(0)
    decoder = GazeLLEDecoder(64, inout=inout, dim=32).eval()
    boxes = [(0.1, 0.1, 0.3, 0.3), (0.5, 0.2, 0.7, 0.4), None, (0.0, 0.0, 0.7, 0.7),
             (0.9, 0.9, 0.95, 0.97), (0.25, 0.25, 0.45, 0.45)]
    maps = head_maps(boxes, decoder.grid)
    features = 3 * torch.randn(2, 64, decoder.grid, decoder.grid)
    with torch.inference_mode():
        shared = decoder(features, maps, [2, 4])
        decoder.share_first_block = False
        per_head = decoder(features, maps, [2, 4])
    torch.testing.assert_close(shared[0], per_head[0], atol=1e-5, rtol=0)
    if inout:
        torch.testing.assert_close(shared[1], per_head[1], atol=1e-5, rtol=0)
    assert (shared[0] - per_head[0]).abs().max() < 1e-5 < (shared[0][0] - shared[0][1]).abs().max()


def test_manifest_names_are_sha256_checked(fx, tmp_path):
    from gaze_perception.core.weights import sha256_of

    files = {"tiny_backbone": "dinov2_backbone_hub_format.pth",
             "tiny_decoder": "gazelle_decoder_inout.pt"}
    entries = []
    for name, file in files.items():
        (tmp_path / file).symlink_to(fx["root"] / file)
        sha = "0" * 64 if name == "tiny_decoder" else sha256_of(fx["root"] / file)
        entries.append(f"  {name}:\n    file: {file}\n    sha256: '{sha}'\n")
    (tmp_path / "manifest.yaml").write_text("weights:\n" + "".join(entries))
    with pytest.raises(WeightsError, match="gazelle_decoder_inout.pt' has sha256"):
        GazeLLEBackend(variant="vits14_depth2", weights_dir=tmp_path, device="cpu",
                       backbone_weights="tiny_backbone", decoder_weights="tiny_decoder")
