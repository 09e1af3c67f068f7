"""`train gaze-target` and `eval gaze-target` end to end on tiny datasets in the released
formats, with a random depth-2 ViT-S/14 backbone: the loss falls, the reference's log lines
appear, the checkpoints are published-format decoders that the `gazelle` backend loads, and the
evaluator scores them. VAT fine-tunes from the GazeFollow run (fresh in/out head), on cached
features, and is resumed half-way."""
import contextlib
import csv
import io
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gaze_perception.backends.gazelle import GazeLLEBackend  # noqa: E402
from gaze_perception.cli.main import main  # noqa: E402
from gaze_perception.core.types import Face  # noqa: E402
from gaze_perception.models.dinov2 import create_dinov2  # noqa: E402
from gaze_perception.models.gazelle import GazeLLEDecoder  # noqa: E402
from test_gaze_datasets import write_gazefollow, write_vat  # noqa: E402


def _run(argv):
    """main(argv) with stdout captured (module fixtures cannot use capsys)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def model_args(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "dinov2_tiny_random.pth"
    torch.save(create_dinov2("vits14", depth=2).state_dict(), path)
    return ["--variant", "vits14_depth2", "--backbone-weights", str(path), "--device", "cpu"]


@pytest.fixture(scope="module")
def gazefollow(tmp_path_factory, model_args):
    base = tmp_path_factory.mktemp("gazefollow")
    root, out = write_gazefollow(base / "data"), base / "run"
    code, log = _run(["train", "gaze-target", "--dataset", "gazefollow", "--root", str(root),
                      "--out", str(out), "--epochs", "2", "--batch-size", "2", "--workers", "0",
                      *model_args])
    assert code == 0
    return {"root": root, "out": out, "log": log}


@pytest.fixture(scope="module")
def vat(tmp_path_factory, model_args, gazefollow):
    base = tmp_path_factory.mktemp("vat")
    root, out = write_vat(base / "data"), base / "run"
    argv = ["train", "gaze-target", "--dataset", "vat", "--root", str(root), "--out", str(out),
            "--weights", str(gazefollow["out"] / "best.pt"), "--frame-stride", "3",
            # one full batch per epoch; the recipe's 1e-2 for the fresh in/out head
            # overshoots on a 4-person toy set
            "--batch-size", "4", "--inout-lr", "1e-3", "--workers", "0",
            "--cache-features", str(base / "cache"), *model_args]
    first = _run(argv + ["--epochs", "1"])
    resumed = _run(argv + ["--epochs", "2", "--resume"])
    straight = _run([v if v != str(out) else str(base / "straight") for v in argv]
                    + ["--epochs", "2"])
    assert first[0] == resumed[0] == straight[0] == 0
    return {"root": root, "out": out, "straight": base / "straight",
            "logs": (first[1], resumed[1]), "cache": base / "cache"}


def test_gazefollow_training_prints_the_reference_lines_and_the_loss_falls(gazefollow):
    log = gazefollow["log"]
    # 5 in-frame training people (the out-of-frame one is left out, as the reference does)
    assert re.findall(r"^TRAIN EPOCH (\d), iter 0/3, loss=\d+\.\d{4}$", log, re.M) == ["0", "1"]
    evals = re.findall(r"^EVAL EPOCH (\d): AUC=([\d.]+), Min L2=([\d.]+), Avg L2=([\d.]+)$",
                       log, re.M)
    assert [e[0] for e in evals] == ["0", "1"]
    best = re.search(r"^Completed training\. Best Min L2 of ([\d.]+) obtained at epoch (\d)$",
                     log, re.M)
    assert best and float(best[1]) == min(float(e[2]) for e in evals)
    rows = _rows(gazefollow["out"])
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[1]["lr_decoder"]) < float(rows[0]["lr_decoder"]) == 1e-3  # cosine
    assert any((gazefollow["out"] / "tensorboard").iterdir())


def test_checkpoints_are_published_decoders_that_the_backend_loads(gazefollow, model_args):
    best = torch.load(gazefollow["out"] / "best.pt", weights_only=True)
    assert sorted(best) == sorted(GazeLLEDecoder(384).state_dict())  # 40 keys, no in/out
    backend = GazeLLEBackend(variant="vits14_depth2", backbone_weights=model_args[3],
                             decoder_weights=str(gazefollow["out"] / "best.pt"), device="cpu",
                             heatmaps=True)
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    (target,) = backend.estimate([image], [[Face.from_xyxy(8, 6, 26, 24)]])[0]
    assert target.heatmap.shape == (64, 64) and target.inout == 1.0


def test_eval_cli_scores_the_checkpoint_as_training_did(gazefollow, model_args, tmp_path):
    out = gazefollow["out"]
    code, text = _run(["eval", "gaze-target", "--dataset", "gazefollow",
                       "--root", str(gazefollow["root"]), "--weights", str(out / "best.pt"),
                       "--json", str(tmp_path / "gf.json"), "--batch", "2", *model_args])
    assert code == 0
    assert "GazeFollow test: 3 people" in text and "Min L2" in text and "Avg L2" in text
    got = json.loads((tmp_path / "gf.json").read_text())["metrics"]
    best_epoch = re.search(r"obtained at epoch (\d)", gazefollow["log"])[1]
    row = next(r for r in _rows(out) if r["epoch"] == best_epoch)
    for key in ("auc", "avg_l2", "min_l2"):
        assert got[key] == pytest.approx(float(row[key]), abs=1e-6)
    assert got["people"] == 3


def test_vat_fine_tunes_with_inout_on_cached_features_and_resumes(vat):
    first, resumed = vat["logs"]
    assert re.findall(r"^TRAIN EPOCH (\d)", first, re.M) == ["0"]
    assert re.findall(r"^TRAIN EPOCH (\d)", resumed, re.M) == ["1"]  # continues, not restarts
    assert re.search(r"^EVAL EPOCH 1: AUC=[\d.]+, L2=[\d.]+, Inout AP=[\d.]+$", resumed, re.M)
    assert re.search(r"^Completed training\. Best AUC of [\d.]+ obtained at epoch \d$",
                     resumed, re.M)
    rows = _rows(vat["out"])
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    # the recipe's decoder rate, constant as in the reference's VAT training
    assert [float(r["lr_decoder"]) for r in rows] == [1e-5, 1e-5]
    # frames 0 and 3 of the clip, two people each; person 2 looks out of frame on frame 3
    assert rows[0]["people"] == "4" and rows[0]["in_frame"] == "3"
    assert len(list(vat["cache"].rglob("*.npy"))) == 4  # two frames per split
    best = torch.load(vat["out"] / "best.pt", weights_only=True)
    assert sorted(best) == sorted(GazeLLEDecoder(384, inout=True).state_dict())  # 45 keys


def test_a_resumed_run_repeats_the_straight_one(vat):
    resumed = torch.load(vat["out"] / "last.pt", weights_only=True)
    straight = torch.load(vat["straight"] / "last.pt", weights_only=True)
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    assert _rows(vat["out"])[1]["train_loss"] == _rows(vat["straight"])[1]["train_loss"]


def test_vat_eval_cli_reports_auc_l2_and_inout_ap(vat, model_args, tmp_path):
    code, text = _run(["eval", "gaze-target", "--dataset", "vat", "--root", str(vat["root"]),
                       "--weights", str(vat["out"] / "best.pt"), "--json",
                       str(tmp_path / "vat.json"), *model_args])
    assert code == 0 and "in/out AP" in text
    metrics = json.loads((tmp_path / "vat.json").read_text())["metrics"]
    assert metrics["people"] == 12 and metrics["in_frame"] == 9  # every frame in eval
    assert 0 <= metrics["auc"] <= 1 and 0 <= metrics["inout_ap"] <= 1 and metrics["l2"] >= 0


def test_cli_names_file_and_line_of_a_malformed_row(tmp_path, model_args, capsys):
    root = write_gazefollow(tmp_path)
    path = root / "test_annotations_release.txt"
    rows = path.read_text().splitlines()
    rows[1] = rows[1].replace("0.3", "abc", 1)
    path.write_text("\n".join(rows) + "\n")
    assert main(["eval", "gaze-target", "--dataset", "gazefollow", "--root", str(root),
                 "--weights", "unused.pt", *model_args]) == 2
    assert re.search(r"test_annotations_release\.txt:2: expected numbers",
                     capsys.readouterr().err)


def test_resume_needs_a_run_and_a_run_is_never_overwritten(tmp_path, gazefollow, model_args,
                                                           capsys):
    assert main(["train", "gaze-target", "--dataset", "vat", "--root", str(tmp_path),
                 "--out", str(tmp_path / "run"), "--resume", *model_args]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", "gaze-target", "--dataset", "gazefollow", "--root",
                 str(gazefollow["root"]), "--out", str(gazefollow["out"]), *model_args]) == 2
    assert "holds a run already: add --resume" in capsys.readouterr().err
