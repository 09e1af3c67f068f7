"""ros2 launch gaze_perception classroom.launch.py [image:=/camera/image_raw] [config:=classroom]

The classroom graph (config/classroom.yaml): faces with tracking, eye states, gaze targets and
attention. The same arguments as gaze_perception.launch.py, whose description it reuses.
"""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "gaze_perception_launch", Path(__file__).with_name("gaze_perception.launch.py"))
_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_main)


def generate_launch_description():
    return _main.generate_launch_description(default_config="classroom")
