"""`gaze-perception run SOURCE`: the pipeline over an image, a folder or a video, as JSON Lines."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2


def add_args(p) -> None:
    p.add_argument("source", help="image file, folder of images, or video file")
    p.add_argument("--config", help="pipeline YAML or a name in config/ (default: config/default.yaml)")
    p.add_argument("--out", help="folder for annotated images")
    p.add_argument("--jsonl", help="write JSON Lines here (default: standard output)")
    p.add_argument("--faces", action="append", metavar="FILE",
                   help="head boxes instead of the detector, VideoAttentionTarget text "
                   "(file,xmin,ymin,xmax,ymax[,...]); repeat for each person")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--batch", type=int, default=1, help="frames per backend call")
    p.add_argument("--threads", type=int, default=0, help="torch/OpenCV threads; 0 (default) = "
                   "auto: OMP_NUM_THREADS if set, else every core")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args) -> int:
    from tqdm import tqdm

    from ..core.config import load_pipeline_config
    from ..core.draw import annotate
    from ..core.pipeline import Pipeline
    from ..core.head_boxes import read_head_boxes
    from ..core.sources import FrameSource, batched
    from ..core.threads import apply_threads

    apply_threads(args.threads)
    source = FrameSource(args.source)
    given = read_head_boxes(args.faces) if args.faces else None
    config = load_pipeline_config(args.config)
    if given is not None:
        config.faces = None
    pipeline = Pipeline(config, device=args.device)
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    sink = open(args.jsonl, "w") if args.jsonl else sys.stdout
    show = source.kind != "image" and not args.no_progress
    try:
        with tqdm(total=len(source) or None, disable=not show, unit="frame",
                  desc=Path(args.source).name, file=sys.stderr) as bar:
            for batch in batched(source, max(1, args.batch)):
                faces = None if given is None else [given.faces_for(f.name, f.index) for f in batch]
                results = pipeline([f.rgb for f in batch], faces=faces)
                for frame, res in zip(batch, results):
                    res.frame, res.source, res.stamp = frame.index, frame.name, round(frame.stamp, 6)
                    sink.write(json.dumps(res.to_json()) + "\n")
                    if out_dir:
                        name = Path(frame.name.replace("#", "_")).stem + ".jpg"
                        cv2.imwrite(str(out_dir / name),
                                    cv2.cvtColor(annotate(frame.rgb, res), cv2.COLOR_RGB2BGR))
                bar.update(len(batch))
    finally:
        if sink is not sys.stdout:
            sink.close()
    return 0
