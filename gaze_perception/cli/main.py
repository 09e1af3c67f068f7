"""`gaze-perception` command line: thin adapters over the core, imported lazily per command."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from .args import EXIT_ERROR

#: `train` / `eval` targets: module providing add_{train,eval}_args(p) and {train,eval}_main(args)
TASKS = {
    "eye-state": "gaze_perception.training.eyes.cli",
    "face-detector": "gaze_perception.training.faces.cli",
    "gaze-target": "gaze_perception.training.gaze_target.cli",
    "gaze-direction": "gaze_perception.training.gaze_direction.cli",
    "gaze-coding": "gaze_perception.training.gaze_coding.cli",
}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _build_parser(argv=()) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gaze-perception",
                                description="Faces, eye states and gaze targets, with or without ROS 2.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    from . import run as run_cmd
    run_cmd.add_args(sub.add_parser("run", help="the pipeline on an image, folder, or video (no ROS)"))

    from . import demo as demo_cmd
    demo_cmd.add_args(sub.add_parser("demo", help="the ROS 2 graph on the bundled sample"))

    from . import up as up_cmd
    up_cmd.add_args(sub.add_parser("up", help="start the ROS 2 graph of a pipeline YAML "
                                   "(one process per node) until Ctrl-C"))

    from . import report as report_cmd
    report_cmd.add_args(sub.add_parser("report", help="per-person attention report (CSV, "
                                       "plots, HTML) of a JSON Lines file or a bag"))

    from . import code_video as code_video_cmd
    code_video_cmd.add_args(sub.add_parser("code-video", help="infant gaze codes (away, left, "
                                           "right) for every frame of a video, as CSV"))

    sub.add_parser("backends", help="list installed backends by kind")

    from . import export as export_cmd
    export_cmd.add_args(sub.add_parser("export", help="a model's networks as ONNX files"))

    from . import weights as weights_cmd
    weights_cmd.add_args(sub.add_parser("weights", help="list, fetch or verify model weights"))

    from . import bag as bag_cmd
    bag_cmd.add_args(sub.add_parser("bag", help="record, play, process or evaluate rosbag2 bags"))

    for verb in ("train", "eval"):
        vp = sub.add_parser(verb, help=f"{verb} a model ({', '.join(TASKS)})")
        vsub = vp.add_subparsers(dest="task", required=True)
        for task, module in TASKS.items():
            if not _module_exists(module):
                continue
            tp = vsub.add_parser(task, help=f"{verb} {task}")
            tp.set_defaults(_module=module)
            if list(argv[:2]) == [verb, task]:  # import (torch, ...) only for the task asked for
                getattr(importlib.import_module(module), f"add_{verb}_args")(tp)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser([a for a in argv if a not in ("-v", "--verbose")]).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "backends":
            from ..core.registry import list_backends
            for kind, names in list_backends().items():
                print(f"{kind}: {', '.join(names) or '(none)'}")
            return 0
        if args.command in ("train", "eval"):
            module = importlib.import_module(args._module)
            return int(getattr(module, f"{args.command}_main")(args) or 0)
        module = importlib.import_module(f"gaze_perception.cli.{args.command.replace('-', '_')}")
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"gaze-perception {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a path that is a folder, unreadable, a full disk, ...
        print(f"gaze-perception {args.command}: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _os_error(exc: OSError) -> str:
    """An OSError in words that name the path: `'x' is a folder; expected a file`."""
    if exc.filename is None or isinstance(exc, FileNotFoundError) and exc.strerror is None:
        return str(exc)
    name = f"'{exc.filename}'" + (f" -> '{exc.filename2}'" if exc.filename2 else "")
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a folder; expected a file"
    if isinstance(exc, FileExistsError):
        return f"{name} already exists as a file; a folder was expected there"
    if isinstance(exc, NotADirectoryError):
        return f"{name}: a part of this path is a file, not a folder"
    if isinstance(exc, FileNotFoundError):
        return f"{name} does not exist"
    return f"{name}: {exc.strerror or exc}"


if __name__ == "__main__":
    sys.exit(main())
