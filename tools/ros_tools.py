"""Test-time set-up: the real ROS 2 tooling where no ROS install provides it (Makefile step 5).

1. `ament-develop`: make the editable `gaze_perception` findable the way colcon's
   `--symlink-install` does, so `ros2 launch gaze_perception classroom.launch.py` and
   `ros2 run gaze_perception face_detector` work from the venv: the package marker in
   share/ament_index, package.xml, launch/ and config/ under share/gaze_perception (real folders,
   linked files: ros2launch's os.walk does not follow linked folders), and the node executables
   under lib/gaze_perception (links to the console scripts in bin/).
2. `install`: the pure-Python `launch`, `launch_ros`, `ros2launch` and `ros2` command line from
   `../shared/ros_python` (pip, from a writable copy: the shared folder is read-only) and the
   interface packages `composition_interfaces`, `hri_msgs`, `tf2_msgs` from
   `../shared/ros_interfaces` (colcon, into the venv prefix). Only what is not importable yet is
   installed, so a ROS install (sourced) provides its own. Without ../shared it says so and
   installs nothing; the tests that need these tools then skip with a reason.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "gaze_perception"
#: module to import → folder in ../shared/ros_python
PYTHON_PACKAGES = {
    "rosidl_runtime_py": "rosidl_runtime_py_repo", "launch": "launch", "launch_xml": "launch_xml",
    "launch_yaml": "launch_yaml", "launch_ros": "launch_ros", "ros2cli": "ros2cli",
    "ros2launch": "ros2launch", "ros2topic": "ros2topic", "ros2node": "ros2node",
    "ros2param": "ros2param", "ros2lifecycle": "ros2lifecycle", "ros2service": "ros2service",
    "ros2pkg": "ros2pkg", "ros2interface": "ros2interface",
}
#: interface package → a module it provides
INTERFACE_PACKAGES = {"composition_interfaces": "composition_interfaces.srv",
                      "hri_msgs": "hri_msgs.msg", "tf2_msgs": "tf2_msgs.msg"}


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == str(target):
            return
        link.unlink()
    link.symlink_to(target)


def ament_develop(prefix: Path) -> None:
    share = prefix / "share" / PACKAGE
    _link(REPO / "resource" / PACKAGE,
          prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE)
    _link(REPO / "package.xml", share / "package.xml")
    for folder, pattern in (("launch", "*.launch.py"), ("config", "*")):
        for stale in (share / folder).glob("*") if (share / folder).is_dir() else ():
            if stale.is_symlink() and not stale.exists():
                stale.unlink()  # a file removed from the repository
        for path in sorted((REPO / folder).glob(pattern)):
            _link(path, share / folder / path.name)
    scripts = [ep.name for ep in importlib.metadata.distribution(PACKAGE).entry_points
               if ep.group == "console_scripts" and ep.name != "gaze-perception"]
    for name in scripts:
        _link(prefix / "bin" / name, prefix / "lib" / PACKAGE / name)
    print(f"ament index: {PACKAGE} in {prefix} (launch files, config, {len(scripts)} executables)")


def _missing(modules) -> list:
    out = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(module)
    return out


def install(prefix: Path, shared: Path, build: Path) -> int:
    py_missing = _missing(PYTHON_PACKAGES)
    if_missing = [p for p in INTERFACE_PACKAGES
                  if _missing([INTERFACE_PACKAGES[p]])]
    if not py_missing and not if_missing:
        print("ros tools: launch, launch_ros, ros2cli and the interface packages are present")
        return 0
    if not shared.is_dir():
        print(f"ros tools: {shared} not found; not installing {py_missing + if_missing} "
              "(the tests that use the real ros2 command skip)")
        return 0
    if py_missing:
        copies = []
        for module in py_missing:
            src = shared / "ros_python" / PYTHON_PACKAGES[module]
            dst = build / "ros_python" / PYTHON_PACKAGES[module]
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "*.egg-info"),
                            copy_function=shutil.copyfile)
            copies.append(str(dst))
        print(f"ros tools: pip install {', '.join(py_missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", *copies], check=True)
    if if_missing:
        print(f"ros tools: colcon build {', '.join(if_missing)} (a few minutes)")
        env = dict(os.environ, AMENT_PREFIX_PATH=str(prefix), CMAKE_PREFIX_PATH=str(prefix),
                   PATH=f"{prefix / 'bin'}:{os.environ.get('PATH', '')}")
        subprocess.run([str(prefix / "bin" / "colcon"), "--log-base", str(build / "log"), "build",
                        "--merge-install", "--install-base", str(prefix),
                        "--build-base", str(build / "ros_interfaces"),
                        "--base-paths", *[str(shared / "ros_interfaces" / p) for p in if_missing],
                        "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
                        "-DBUILD_TESTING=OFF"], check=True, env=env, cwd=REPO)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["ament-develop", "install"])
    ap.add_argument("--prefix", type=Path, default=Path(sys.prefix))
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--build", type=Path, default=REPO / "build")
    args = ap.parse_args(argv)
    if args.action == "ament-develop":
        ament_develop(args.prefix)
        return 0
    return install(args.prefix, args.shared, args.build)


if __name__ == "__main__":
    sys.exit(main())
