"""Start-up of the `gaze-perception` command: wall time of `--help`, `backends` and `run` on one
image (median of `--repeats` runs, each a fresh process), and for each command the imports
that cost the most (`python -X importtime`, cumulative milliseconds of the slowest top-level
packages and of this package's modules).

    .venv/bin/python benchmarks/import_time.py [--repeats 3] [--top 8]
"""
import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def photo(folder: Path) -> Path:
    import cv2

    from gaze_perception.samples import astronaut

    path = folder / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    return path


def run(args, importtime: bool = False):
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + \
        ["-m", "gaze_perception.cli.main", *args]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {res.stderr[-1000:]}")
    return wall, res.stderr


def slowest(stderr: str, top: int):
    """(cumulative ms, module) of top-level packages and gaze_perception modules, largest first;
    a package is listed once, at its outermost import."""
    seen = {}
    for m in LINE.finditer(stderr):
        cumulative, depth, name = int(m.group(2)) / 1000.0, len(m.group(3)), m.group(4)
        key = name if name.startswith("gaze_perception") else name.split(".")[0]
        if key == name or depth == 1:
            seen[key] = max(seen.get(key, 0.0), cumulative)
    ranked = sorted(seen.items(), key=lambda kv: -kv[1])
    return [(ms, name) for name, ms in ranked if name != "gaze_perception"][:top]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=8, help="imports listed per command")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = photo(Path(tmp))
        commands = {"--help": ["--help"], "backends": ["backends"],
                    "run IMAGE": ["run", str(image), "--no-progress"]}
        walls = {name: [] for name in commands}
        for _ in range(args.repeats):  # the commands in turns: the same background load
            for name, argv in commands.items():
                walls[name].append(run(argv)[0])
        print(f"{'command':12s} {'wall s':>7s}  runs")
        for name, w in walls.items():
            print(f"{name:12s} {statistics.median(w):7.2f}  " + ", ".join(f"{x:.2f}" for x in w))
        for name, argv in commands.items():
            _, err = run(argv, importtime=True)
            print(f"\nslowest imports of `{name}` (cumulative ms, -X importtime):")
            for ms, module in slowest(err, args.top):
                print(f"  {ms:8.1f}  {module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
