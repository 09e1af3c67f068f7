"""ros2 launch gaze_perception gaze_perception.launch.py [config:=classroom] [image:=/camera/image_raw]
[autostart:=false] [threads:=N] [compose:=true]

Builds the graph from the same pipeline YAML as `gaze-perception run` / `demo` (config/), so the
YAML is the one place a pipeline is described.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gaze_perception.core.config import load_pipeline_config
from gaze_perception.graph import node_specs


def _nodes(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    compose = arg("compose").lower()
    specs = node_specs(load_pipeline_config(arg("config") or None), image_topic=arg("image"),
                       namespace=arg("namespace"), device=arg("device"),
                       threads=int(arg("threads") or 0),
                       compose=None if not compose else compose in ("true", "1", "yes"),
                       autostart=arg("autostart").lower() not in ("false", "0", "no"))
    return [Node(package="gaze_perception", executable=s.executable, namespace=s.namespace,
                 arguments=s.arguments, parameters=[s.parameters],
                 remappings=list(s.remappings.items()), output="screen") for s in specs]


def generate_launch_description(default_config: str = "default"):
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config,
                              description="pipeline YAML: a path or a name in config/"),
        DeclareLaunchArgument("image", default_value="",
                              description="camera image topic; empty = the config's remapping"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="node namespace; empty = the config's"),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda[:N]"),
        DeclareLaunchArgument("threads", default_value="0",
                              description="torch/OpenCV threads per model node; 0 = the "
                                          "cores divided among them"),
        DeclareLaunchArgument("compose", default_value="",
                              description="true: every node in one process, the face node "
                                          "handing images and faces to the eye and gaze nodes "
                                          "directly; false: a process per node; empty = the "
                                          "config's `compose:`"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="false: nodes wait unconfigured for a lifecycle "
                                          "manager (e.g. nav2's lifecycle_manager)"),
        # launch's default grace of 5 s after SIGINT is short for model nodes on a loaded
        # machine (seen: 4-6 s on two busy cores); a SIGTERM in their teardown is unclean
        DeclareLaunchArgument("sigterm_timeout", default_value="15",
                              description="seconds after SIGINT before launch sends SIGTERM"),
        OpaqueFunction(function=_nodes),
    ])
