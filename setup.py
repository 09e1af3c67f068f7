from glob import glob

from setuptools import find_packages, setup

package_name = "gaze_perception"

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
            "face_detector = gaze_perception.nodes.face_detector:main",
            "eye_state = gaze_perception.nodes.eye_state:main",
            "gaze_target = gaze_perception.nodes.gaze_target:main",
            "source = gaze_perception.nodes.source:main",
            "attention = gaze_perception.nodes.attention:main",
            "gaze_coding = gaze_perception.nodes.gaze_coding:main",
            "composed = gaze_perception.nodes.composed:main",
        ],
        "gaze_perception.face_detectors": [
            "mtcnn = gaze_perception.backends.mtcnn:MTCNNDetector",
            "yunet = gaze_perception.backends.yunet:YuNetDetector",
            "retinaface = gaze_perception.backends.retinaface:RetinaFaceDetector",
        ],
        "gaze_perception.face_landmarks": [
            "mediapipe = gaze_perception.backends.mediapipe_mesh:MediaPipeFaceMesh",
        ],
        "gaze_perception.gaze_direction": [
            "iris = gaze_perception.backends.iris_gaze:IrisGazeDirection",
            "l2cs = gaze_perception.backends.gaze_direction:L2CSGazeDirection",
            "itracker = gaze_perception.backends.gaze_direction:ITrackerScreenPoint",
        ],
        "gaze_perception.gaze_coding": [
            "icatcher = gaze_perception.backends.gaze_coding:InfantGazeCoder",
        ],
        "gaze_perception.eye_state": [
            "timm_eye = gaze_perception.backends.timm_eye:TimmEyeState",
        ],
        "gaze_perception.gaze_targets": [
            "gazelle = gaze_perception.backends.gazelle:GazeLLEBackend",
            "head_pose = gaze_perception.backends.head_pose_gaze:HeadPoseGaze",
        ],
    },
)
