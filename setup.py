import importlib.util
import sys
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

package_name = "gaze_perception"

# The stage table (its entry-point groups, the node executables), loaded alone: setup.py must
# not import the package.
_spec = importlib.util.spec_from_file_location(
    "_gaze_stages", Path(__file__).resolve().parent / package_name / "core" / "stages.py")
stages = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)  # dataclasses look
_spec.loader.exec_module(stages)                                            # it up there

#: the backends this package ships, by stage kind
BACKENDS = {
    "face_detector": [
        "mtcnn = gaze_perception.backends.mtcnn:MTCNNDetector",
        "yunet = gaze_perception.backends.yunet:YuNetDetector",
        "retinaface = gaze_perception.backends.retinaface:RetinaFaceDetector",
    ],
    "face_landmarks": [
        "mediapipe = gaze_perception.backends.mediapipe_mesh:MediaPipeFaceMesh",
    ],
    "eye_state": [
        "timm_eye = gaze_perception.backends.timm_eye:TimmEyeState",
    ],
    "gaze_target": [
        "gazelle = gaze_perception.backends.gazelle:GazeLLEBackend",
        "head_pose = gaze_perception.backends.head_pose_gaze:HeadPoseGaze",
    ],
    "gaze_direction": [
        "iris = gaze_perception.backends.iris_gaze:IrisGazeDirection",
        "l2cs = gaze_perception.backends.gaze_direction:L2CSGazeDirection",
        "itracker = gaze_perception.backends.gaze_direction:ITrackerScreenPoint",
    ],
    "gaze_coding": [
        "icatcher = gaze_perception.backends.gaze_coding:InfantGazeCoder",
    ],
}

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["gaze_perception", "gaze_perception.*"]),
    package_data={"gaze_perception.core": ["data/*.npz"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/weights", ["weights/manifest.yaml"]),
        ("share/" + package_name + "/weights/eye_state", glob("weights/eye_state/*")),
    ],
    install_requires=["setuptools", "numpy", "opencv-python-headless", "pyyaml", "tqdm"],
    extras_require={"test": ["pytest"]},
    zip_safe=True,
    maintainer="gaze_perception maintainers",
    maintainer_email="maintainers@gaze-perception.org",
    description="Plugin-based ROS 2 perception nodes: faces, eye states and gaze targets.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "gaze-perception = gaze_perception.cli.main:main",
            *(f"{name} = {node.split(':')[0]}:main" for name, node in stages.nodes().items()),
        ],
        **{stages.by_kind(kind).group: entries for kind, entries in BACKENDS.items()},
    },
)
