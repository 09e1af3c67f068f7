"""`gaze-perception run SOURCE`: the pipeline over an image, a folder or a video, as JSON Lines."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .args import EXIT_OK, EXIT_PARTIAL, input_file, output_dir, output_file, positive_int


def add_args(p) -> None:
    p.add_argument("source", help="image file, folder of images, or video file")
    p.add_argument("--config", help="pipeline YAML or a name in config/ (default: config/default.yaml)")
    p.add_argument("--out", type=output_dir,
                   help="folder for annotated images, one per frame: NAME.EXT.jpg for images "
                   "(a.png -> a.png.jpg), STEM_NNNNNN.jpg for video frames (clip_000123.jpg)")
    p.add_argument("--jsonl", type=output_file,
                   help="write JSON Lines here (default: standard output)")
    p.add_argument("--faces", action="append", metavar="FILE", type=input_file,
                   help="head boxes instead of the detector, VideoAttentionTarget text "
                   "(file,xmin,ymin,xmax,ymax[,...]); repeat for each person")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--batch", type=positive_int, default=1, help="frames per backend call")
    p.add_argument("--threads", type=int, default=0, help="torch/OpenCV threads; 0 (default) = "
                   "auto: OMP_NUM_THREADS if set, else half the cores (face detection runs "
                   "beside the other stages)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def output_name(source, frame) -> str:
    """The annotated image of `frame` in `--out`: unique per source file and frame."""
    if source.kind == "video":
        return f"{source.path.stem}_{frame.index:06d}.jpg"
    return f"{frame.name}.jpg"


def main(args) -> int:
    import cv2  # here, not at import: `gaze-perception --help` needs no OpenCV
    from tqdm import tqdm

    from ..core.config import load_pipeline_config
    from ..core.draw import annotate
    from ..core.pipeline import Pipeline
    from ..core.head_boxes import read_head_boxes
    from ..core.sources import FrameSource, SourceError, batched
    from ..core.threads import apply_threads

    apply_threads(args.threads, 2)  # two model threads: Pipeline.stream
    source = FrameSource(args.source, on_skip=lambda name, reason: tqdm.write(
        f"skipped {name}: {reason}", file=sys.stderr))
    given = read_head_boxes(args.faces) if args.faces else None
    config = load_pipeline_config(args.config)
    if given is not None:
        config.faces = None
    pipeline = Pipeline(config, device=args.device)
    out_dir = args.out
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    if args.jsonl:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    sink = open(args.jsonl, "w") if args.jsonl else sys.stdout
    written = 0
    show = source.kind != "image" and not args.no_progress
    try:
        with tqdm(total=len(source) or None, disable=not show, unit="frame",
                  desc=Path(args.source).name, file=sys.stderr) as bar:
            batches = (([f.rgb for f in batch],
                        None if given is None else [given.faces_for(f.name, f.index)
                                                    for f in batch], batch)
                       for batch in batched(source, max(1, args.batch)))
            # the next batch's faces are detected while this batch's other stages run
            for batch, results in pipeline.stream(batches):
                for frame, res in zip(batch, results):
                    res.frame, res.source, res.stamp = frame.index, frame.name, round(frame.stamp, 6)
                    sink.write(json.dumps(res.to_json()) + "\n")
                    written += 1
                    if out_dir:
                        dest = out_dir / output_name(source, frame)
                        if not cv2.imwrite(str(dest), cv2.cvtColor(annotate(frame.rgb, res),
                                                                   cv2.COLOR_RGB2BGR)):
                            raise RuntimeError(f"cannot write '{dest}'")
                bar.update(len(batch))
    finally:
        if sink is not sys.stdout:
            sink.close()
    if source.skipped and not written:
        raise SourceError(f"no frame of '{args.source}' could be read ({len(source.skipped)} "
                          "input(s) skipped, named above)")
    if source.skipped:
        print(f"finished with {len(source.skipped)} input(s) skipped (named above); "
              f"{written} frame(s) processed", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK
