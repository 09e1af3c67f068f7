"""Real people, right answers: dense landmarks, head pose, eye state at every face size and gaze
from the eyes, on the real faces in ../shared (AFLW2000-3D development set, the VideoAttentionTarget
clip) and the astronaut photo. No stored results: every figure is computed here."""
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaze_perception.core import registry
from gaze_perception.core import face_mesh as fm
from gaze_perception.core.types import CameraIntrinsics, Face
from gaze_perception.core.weights import WeightsError
from gaze_perception.metrics import head_pose as hp

REPO = Path(__file__).resolve().parents[1]


def rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


@pytest.fixture(scope="module")
def aflw(shared_dir) -> Path:
    return shared_dir / "data" / "headpose_aflw2000_dev"


@pytest.fixture(scope="module")
def detector():
    return registry.create("face_detector", "mtcnn", device="cpu")


@pytest.fixture(scope="module")
def mesher():
    return registry.create("face_landmarks", "mediapipe", device="cpu")


@pytest.fixture(scope="module")
def eyes():
    return registry.create("eye_state", "timm_eye", device="cpu")


def test_landmarks_load_from_the_wheel_files_and_refuse_a_tampered_one(tmp_path):
    shutil.copy(REPO / "weights" / "manifest.yaml", tmp_path / "manifest.yaml")
    (tmp_path / "mediapipe").mkdir()
    for name in ("face_landmark.tflite", "iris_landmark.tflite"):
        shutil.copy(REPO / "weights" / "mediapipe" / name, tmp_path / "mediapipe" / name)
    registry.create("face_landmarks", "mediapipe", weights_dir=tmp_path)   # sha256 ok
    bad = tmp_path / "mediapipe" / "face_landmark.tflite"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="face_landmark.tflite"):
        registry.create("face_landmarks", "mediapipe", weights_dir=tmp_path)


def test_the_tflite_engine_is_the_installed_opencvs_classic_one(monkeypatch):
    """OpenCV 5.0 calls it ENGINE_CLASSIC, 5.1 ENGINE_OPENCV (5.1 has no ENGINE_CLASSIC); the
    fixtures above load and run the mesh through it."""
    from gaze_perception.backends import mediapipe_mesh as mm
    major_minor = tuple(int(v) for v in cv2.__version__.split(".")[:2])
    expected = "ENGINE_CLASSIC" if major_minor < (5, 1) else "ENGINE_OPENCV"
    assert hasattr(cv2.dnn, expected), f"OpenCV {cv2.__version__} lacks {expected}"
    assert mm.tflite_engine() == getattr(cv2.dnn, expected)
    monkeypatch.setattr(mm, "_ENGINE_NAMES", ("ENGINE_NOT_IN_ANY_OPENCV",))
    with pytest.raises(WeightsError, match=f"OpenCV {cv2.__version__} has none"):
        mm.tflite_engine()


def test_468_points_inside_the_face_box_on_real_faces_and_batch_equals_single_calls(
        aflw, detector, mesher, astronaut):
    images = [astronaut] + [rgb(aflw / f) for f in ("image00019.jpg", "image00064.jpg",
                                                    "image00126.jpg")]
    faces = [[hp.central_face(detector.detect([im])[0], im.shape[1], im.shape[0])]
             for im in images]
    batch = mesher.estimate(images, faces)
    for im, fs, meshes in zip(images, faces, batch):
        (face,), (mesh,) = fs, meshes
        assert mesh.points.shape == (468, 3) and mesh.presence > 0.5
        x0, y0, x1, y1 = face.xyxy
        grow = 0.25 * max(face.width, face.height)
        inside = ((mesh.points[:, 0] > x0 - grow) & (mesh.points[:, 0] < x1 + grow) &
                  (mesh.points[:, 1] > y0 - grow) & (mesh.points[:, 1] < y1 + grow))
        assert inside.all()
        # the iris centres lie between their eye corners
        for eye in (0, 1):
            a, b = mesh.eye_corners(eye)
            t = np.dot(mesh.iris[eye, 0] - a, b - a) / np.dot(b - a, b - a)
            assert 0.1 < t < 0.9
    singles = [mesher.estimate([im], [fs])[0][0] for im, fs in zip(images, faces)]
    for one, many in zip(singles, [m[0] for m in batch]):
        np.testing.assert_allclose(one.points, many.points, atol=1e-3)
        np.testing.assert_allclose(one.iris, many.iris, atol=1e-3)


def test_head_pose_on_the_development_test_half_is_within_4_5_degrees(aflw):
    """The AFLW2000 protocol on the images the face reference was NOT fitted on (odd numbers)."""
    from gaze_perception.core.pipeline import Pipeline, PipelineConfig

    labels = hp.read_labels(aflw)
    fitted = set(fm.reference().fit_files)
    test = [f for f in hp.split(labels, "test") if hp.in_protocol(labels[f])]
    assert test and not fitted & set(test)
    pipe = Pipeline(PipelineConfig.from_dict({"faces": "mtcnn", "landmarks": "mediapipe"}),
                    device="cpu")

    def estimate(image):
        r = pipe([image])[0]
        face = hp.central_face(r.faces, r.width, r.height)
        return None if face is None or face.head_pose is None else \
            tuple(math.degrees(v) for v in face.head_pose)

    result = hp.score(hp.estimate_folder(aflw, test, estimate), labels)
    print(result.table())
    assert result.scored >= 0.95 * len(test)
    assert result.mean <= 4.5
    assert result.bands[0][2] <= 3.5          # near-frontal faces: well under the bound


def _tight(image, face: Face):
    """The face filling the frame: its box, no margin."""
    x0, y0, x1, y1 = (int(round(v)) for v in face.xyxy)
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)])


def test_the_crowd_rule_keeps_every_large_face_found_on_tight_crops(aflw, detector):
    """The frame-filling search (`core.face_context.add_large_faces`) finds faces that fill a
    tight crop; refusing candidates that hold more than one smaller face (the crowd phantom)
    takes none of them away on real tight AFLW2000 crops."""
    import torch

    from gaze_perception.core.face_context import add_large_faces

    plain = registry.create("face_detector", "mtcnn", device="cpu", border_context=False)
    added = 0
    for f in sorted(p.name for p in aflw.glob("*.jpg"))[:120]:
        image = rgb(aflw / f)
        face = hp.central_face(detector.detect([image])[0], image.shape[1], image.shape[0])
        if face is None:
            continue
        crop = _tight(image, face)
        if min(crop.shape[:2]) < 24:
            continue
        regular = plain.detect([crop])[0]
        with torch.inference_mode():  # as inside detect()
            with_rule = add_large_faces(detector._detect_one, crop, regular)
            assert with_rule == add_large_faces(detector._detect_one, crop, regular,
                                                max_inner_faces=10 ** 6), f
        added += len(with_rule) - len(regular)
    assert added >= 8      # the pass still finds frame-filling faces the cascade misses


def test_eye_state_at_every_face_size_never_reads_an_open_eye_closed(aflw, detector, eyes):
    """Tight crops of real frontal faces (the face filling the frame, as at a robot's camera),
    then downscaled to 10-60 px wide: eyes open at full size stay open or become unknown;
    below the minimum eye distance they are unknown."""
    labels = hp.read_labels(aflw)
    files = [f for f in hp.split(labels, "test") if abs(labels[f][0]) < 30
             and abs(labels[f][1]) < 25][:40]
    checked, small_unknown, counts = 0, 0, {}
    for f in files:
        image = rgb(aflw / f)
        face = hp.central_face(detector.detect([image])[0], image.shape[1], image.shape[0])
        if face is None:
            continue
        crop = _tight(image, face)
        found = detector.detect([crop])[0]
        if not found:
            continue
        full = eyes.estimate([crop], [[max(found, key=lambda q: q.width)]])[0][0]
        if full.state != "open":
            continue
        checked += 1
        for width in (10, 15, 20, 30, 40, 60):
            s = width / crop.shape[1]
            small = cv2.resize(crop, (width, max(1, round(crop.shape[0] * s))),
                               interpolation=cv2.INTER_AREA)
            # the detector's own faces where it finds them, else the box and five points scaled
            got = detector.detect([small])[0]
            face_small = max(got, key=lambda q: q.width) if got else Face(
                0, 0, small.shape[1], small.shape[0],
                landmarks=[(x * s, y * s) for x, y in found[0].landmarks])
            state = eyes.estimate([small], [[face_small]])[0][0]
            counts[(width, state.state)] = counts.get((width, state.state), 0) + 1
            assert state.state != "closed", (f, width, state)
            (lx, ly), (rx, ry) = face_small.landmarks[:2]
            if math.hypot(rx - lx, ry - ly) < eyes.min_eye_distance:
                small_unknown += 1
                assert state.state == "unknown" and math.isnan(state.closed_prob)
    print(sorted(counts.items()))
    assert checked >= 20 and small_unknown > 0


_PIPE = []


def _gaze(image, faces=None):
    """The pipeline's faces + landmark stage on one frame (built once)."""
    from gaze_perception.core.pipeline import Pipeline, PipelineConfig

    if not _PIPE:
        _PIPE.append(Pipeline(PipelineConfig.from_dict(
            {"faces": "mtcnn", "landmarks": "mediapipe"}), device="cpu"))
    return _PIPE[0]([image], faces=None if faces is None else [faces])[0]


def test_mirrored_face_flips_the_horizontal_gaze(aflw):
    for f in ("image00019.jpg", "image00044.jpg", "image00064.jpg", "image00006.jpg"):
        image = rgb(aflw / f)
        a = _gaze(image)
        b = _gaze(np.ascontiguousarray(image[:, ::-1]))
        fa = hp.central_face(a.faces, a.width, a.height)
        fb = hp.central_face(b.faces, b.width, b.height)
        ga = a.eye_gaze[a.faces.index(fa)].direction
        gb = b.eye_gaze[b.faces.index(fb)].direction
        if abs(ga[0]) > 0.05:
            assert np.sign(ga[0]) == -np.sign(gb[0]), (f, ga, gb)
        if abs(fa.yaw) < math.radians(30):   # near-frontal: the mirror image in numbers too
            assert abs(ga[0] + gb[0]) < 0.5 * max(abs(ga[0]), abs(gb[0])) + 0.05
            assert abs(ga[1] - gb[1]) < 0.1


def test_looking_at_camera_falls_monotonically_with_the_angle():
    angles = np.linspace(0, 90, 91)
    p = [fm.looking_at_camera_probability(a) for a in angles]
    assert all(x > y for x, y in zip(p, p[1:]))
    assert p[0] > 0.95 and p[-1] < 0.01
    assert fm.looking_at_camera_probability(fm.CAMERA_CONE_DEG) == pytest.approx(0.5)
    k = CameraIntrinsics.guess(640, 480)
    eye = (320.0, 240.0)
    probs = [fm.looking_at_camera((math.sin(math.radians(a)), 0.0, -math.cos(math.radians(a))),
                                  eye, k) for a in (0, 5, 10, 20, 40)]
    assert all(x > y for x, y in zip(probs, probs[1:]))


def test_astronaut_looks_at_the_camera_and_the_two_people_look_at_each_other(
        astronaut, shared_dir):
    r = _gaze(astronaut)
    (g,) = r.eye_gaze
    assert g.looking_at_camera > 0.7 and g.head_pose_source == "mesh"
    clip = shared_dir / "data" / "vat_demo_two_people"
    frames = sorted((clip / "frames").glob("*.jpg"))
    boxes = {p: [list(map(float, line.split(",")[1:5]))
                 for line in (clip / f"{p}.txt").read_text().split()]
             for p in ("person1", "person2")}
    scores = []
    det = registry.create("face_detector", "mtcnn", device="cpu")
    for i in range(0, len(frames), 20):
        image = rgb(frames[i])
        found = det.detect([image])[0]
        faces = []   # the detected face in each labelled head box
        for head in (Face.from_xyxy(*boxes[p][i]) for p in boxes):
            best = max(found, default=None, key=lambda q: _overlap(q, head))
            if best is not None and _overlap(best, head) > 0.3:
                faces.append(best)
        r = _gaze(image, faces)
        scores += [g.looking_at_camera for g in r.eye_gaze]
    print(np.round(scores, 3))
    assert len(scores) >= 6
    assert np.median(scores) < 0.1 and max(scores) < 0.4


def _overlap(a: Face, b: Face) -> float:
    from gaze_perception.core.boxes import iou
    return iou(a.xyxy, b.xyxy)
