"""The structure picture of gaze_perception: which of its parts (subpackages and top-level
modules) import which, against a declared layer order, and what breaks that order.

    .venv/bin/python tools/structure.py                 # the picture; exit status 1 on a problem
    .venv/bin/python tools/structure.py --arrows graph  # also every import from or into a part

Nothing is imported: the files are parsed with `ast`. Every `import` and `from ... import`
counts, at module level or inside a function (a lazy import is an arrow too), relative ones
resolved; imports by name (`importlib.import_module` of a string, entry points) are not arrows.
Problems (each makes the exit status 1):

1. a circle between files: a.py imports b.py which, by any path, imports a.py;
2. an arrow up the layer order: a part imports a part of a higher layer;
3. a circle between parts (sideways arrows within one layer are allowed, loops are not);
4. a part that no layer names and that fits nowhere: it imports a layer above one that
   imports it (a new part that fits is fine: the picture says where; name it in LAYERS);
5. an import of a gaze_perception module that does not exist.

`tests/test_structure.py` runs it in-process and also holds the core to being ROS-free,
torch-free and self-contained.
"""
from __future__ import annotations

import argparse
import ast
import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "gaze_perception"
ROOT = "gaze_perception"

#: The layers, bottom first: (layer, the parts it holds, what they are). A part is a subpackage
#: or a top-level module of gaze_perception (fnmatch patterns; a dotted name such as
#: "graph.spec" makes a module of a subpackage a part of its own). A part may import parts of
#: lower layers and, without a loop, of its own layer; never of a higher one.
LAYERS: Tuple[Tuple[str, Tuple[str, ...], str], ...] = (
    ("base", ("lifetime", "samples"), "leaf modules: process lifetime, sample images"),
    ("core", ("core",), "ROS-free, torch-free types, geometry, stage table, plugin door, pipeline"),
    ("models, metrics", ("models", "metrics"), "torch modules; evaluation metrics"),
    ("backends", ("backends",), "the plugins behind registry.create"),
    ("messages", ("messages",), "ROS messages <-> core types"),
    ("bags", ("bags",), "rosbag2 tools"),
    ("analytics", ("analytics",), "attention accounting and the report"),
    ("graph", ("graph", "dds", "processes"),
     "the graph specification of a pipeline; DDS domains and environment; node processes"),
    ("nodes", ("nodes",), "the rclpy nodes"),
    ("applications", ("training", "cli"), "the gaze-perception commands"),
    ("package", ("__init__",), "gaze_perception/__init__.py, the package's front door"),
)

#: third-party imports the picture sums up (top-level names)
ROS = ("rclpy", "rcl_interfaces", "cv_bridge", "rosidl_runtime_py", "launch", "launch_ros",
       "ament_index_python")
TORCH = ("torch", "torchvision", "timm")


def is_ros(name: str) -> bool:
    return name in ROS or name.endswith("_msgs")


@dataclass(frozen=True)
class Arrow:
    """One import: `source` (a module) imports `target` (a gaze_perception module, or the
    top-level name of a third-party one), at `line`, inside `function` ("" at module level)."""

    source: str
    target: str
    line: int
    function: str = ""
    internal: bool = True

    @property
    def lazy(self) -> bool:
        return bool(self.function)

    def where(self, package: Path) -> str:
        return f"{_path(self.source, package)}:{self.line}"

    def __str__(self) -> str:
        how = f" (inside {self.function})" if self.lazy else ""
        return f"{short(self.source)} -> {short(self.target)}{how}"


@dataclass
class Structure:
    package: Path
    modules: Dict[str, Path]
    arrows: List[Arrow]
    part_of: Dict[str, str]                  # module -> part
    layer_of: Dict[str, Optional[int]]       # part -> layer index (None: no layer names it)
    file_circles: List[List[str]] = field(default_factory=list)
    upward: List[Arrow] = field(default_factory=list)
    part_circles: List[List[str]] = field(default_factory=list)
    misfits: List[str] = field(default_factory=list)
    missing: List[Arrow] = field(default_factory=list)

    @property
    def internal(self) -> List[Arrow]:
        """The imports of gaze_perception modules that exist."""
        return [a for a in self.arrows if a.internal and a.target in self.modules]

    def part_arrows(self) -> Dict[Tuple[str, str], List[Arrow]]:
        out: Dict[Tuple[str, str], List[Arrow]] = {}
        for a in self.internal:
            pa, pb = self.part_of[a.source], self.part_of[a.target]
            if pa != pb:
                out.setdefault((pa, pb), []).append(a)
        return out

    @property
    def problems(self) -> int:
        return (len(self.file_circles) + len(self.upward) + len(self.part_circles)
                + len(self.misfits) + len(self.missing))


def short(module: str) -> str:
    return module[len(ROOT) + 1:] if module.startswith(ROOT + ".") else module


def _path(module: str, package: Path) -> str:
    rel = module.split(".")[1:]
    base = package.joinpath(*rel)
    p = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    try:
        return p.relative_to(package.parent).as_posix()
    except ValueError:
        return p.as_posix()


def module_names(package: Path) -> Dict[str, Path]:
    out = {}
    for p in sorted(package.rglob("*.py")):
        rel = p.relative_to(package).with_suffix("").parts
        if any(not part.isidentifier() for part in rel):
            continue
        if rel[-1] == "__init__":
            rel = rel[:-1]
        out[".".join((ROOT, *rel))] = p
    return out


def part_name(module: str, declared: Iterable[str]) -> str:
    """The part a module belongs to: the longest declared dotted name it lies in, else its first
    component under the package ("__init__" for the package's own __init__.py)."""
    rel = short(module) if module != ROOT else ""
    if not rel:
        return "__init__"
    best = ""
    for pattern in declared:
        for depth in range(1, rel.count(".") + 2):
            head = ".".join(rel.split(".")[:depth])
            if fnmatch.fnmatchcase(head, pattern) and len(head) > len(best):
                best = head
    return best or rel.split(".")[0]


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: Dict[str, Path]):
        self.module, self.is_package, self.modules = module, is_package, modules
        self.scope: List[Tuple[str, bool]] = []   # (name, is a function)
        self.arrows: List[Arrow] = []

    def _function(self) -> str:
        if not any(is_fn for _, is_fn in self.scope):
            return ""
        return ".".join(name for name, _ in self.scope)

    def _visit_scope(self, node, is_function: bool):
        self.scope.append((node.name, is_function))
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node):
        self._visit_scope(node, True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._visit_scope(node, False)

    def _add(self, target: str, line: int, internal: bool):
        arrow = Arrow(self.module, target, line, self._function(), internal)
        if target != self.module and arrow not in self.arrows:   # one per statement and target
            self.arrows.append(arrow)

    def visit_Import(self, node):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top == ROOT:
                self._add(alias.name, node.lineno, True)
            else:
                self._add(top, node.lineno, False)

    def visit_ImportFrom(self, node):
        if node.level:
            package = self.module if self.is_package else self.module.rpartition(".")[0]
            parts = package.split(".")
            if node.level > 1:
                parts = parts[:len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        top = base.split(".")[0]
        if top == "__future__":
            return
        if top != ROOT:
            self._add(top, node.lineno, False)
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in self.modules else base, node.lineno, True)


def scan(package: Path = PACKAGE) -> Tuple[Dict[str, Path], List[Arrow]]:
    modules = module_names(package)
    arrows: List[Arrow] = []
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        arrows.extend(visitor.arrows)
    return modules, arrows


def strongly_connected(nodes: Iterable[str], edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's components of more than one node (the circles), each sorted, in sorted order."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    try:
        for v in sorted(nodes):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(out)


def layer_index(part: str) -> Optional[int]:
    for i, (_, parts, _) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(part, p) for p in parts):
            return i
    return None


def analyse(package: Path = PACKAGE) -> Structure:
    modules, arrows = scan(package)
    declared = [p for _, parts, _ in LAYERS for p in parts]
    part_of = {m: part_name(m, declared) for m in modules}
    s = Structure(package, modules, arrows, part_of, {})
    s.layer_of = {p: layer_index(p) for p in sorted(set(part_of.values()))}

    s.missing = [a for a in arrows if a.internal and a.target not in modules]
    file_edges: Dict[str, Set[str]] = {}
    for a in s.internal:
        file_edges.setdefault(a.source, set()).add(a.target)
    s.file_circles = strongly_connected(modules, file_edges)

    part_edges: Dict[str, Set[str]] = {}
    for (pa, pb), group in s.part_arrows().items():
        part_edges.setdefault(pa, set()).add(pb)
        la, lb = s.layer_of.get(pa), s.layer_of.get(pb)
        if la is not None and lb is not None and lb > la:
            s.upward.extend(group)
    s.part_circles = strongly_connected(s.layer_of, part_edges)

    for part, layer in s.layer_of.items():
        if layer is None:
            lo, hi = _slot(s, part)
            if lo is not None and hi is not None and lo > hi:
                s.misfits.append(f"{part} imports layer '{LAYERS[lo][0]}' but layer "
                                 f"'{LAYERS[hi][0]}' imports it")
    return s


def _slot(s: Structure, part: str) -> Tuple[Optional[int], Optional[int]]:
    """For a part no layer names: the highest layer it imports and the lowest that imports it."""
    pairs = s.part_arrows()
    below = [s.layer_of[b] for (a, b) in pairs if a == part and s.layer_of.get(b) is not None]
    above = [s.layer_of[a] for (a, b) in pairs if b == part and s.layer_of.get(a) is not None]
    return (max(below) if below else None), (min(above) if above else None)


def _circle_lines(s: Structure, circle: Sequence[str], of_parts: bool) -> List[str]:
    members = set(circle)
    out = []
    for a in s.internal:
        src, dst = (s.part_of[a.source], s.part_of[a.target]) if of_parts else \
            (a.source, a.target)
        if src in members and dst in members and src != dst:
            out.append(f"      {a}   [{a.where(s.package)}]")
    return out


def picture(s: Structure, arrows_of: Sequence[str] = ()) -> str:
    lines = [f"gaze_perception structure: {len(s.modules)} modules, {len(LAYERS)} layers "
             "(top first); a part imports only lower layers, or sideways in its own",
             "  (* : every import of that arrow is inside a function)", ""]
    groups = s.part_arrows()
    by_layer: Dict[Optional[int], List[str]] = {}
    for part, layer in s.layer_of.items():
        by_layer.setdefault(layer, []).append(part)
    width = max(len(name) for name, _, _ in LAYERS)
    for i in range(len(LAYERS) - 1, -1, -1):
        name, _, what = LAYERS[i]
        lines.append(f"{i:3d} {name:<{width}}  {what}")
        for part in sorted(by_layer.get(i, [])):
            lines.append(f"      {part:<10} -> {_targets(part, groups)}")
    for part in sorted(by_layer.get(None, [])):
        lo, hi = _slot(s, part)
        fits = (f"above '{LAYERS[lo][0]}'" if lo is not None else "anywhere") + \
            (f", at or below '{LAYERS[hi][0]}'" if hi is not None else "")
        lines.append(f"  ? {part:<10} -> {_targets(part, groups)}   (in no layer; fits {fits})")

    lines += ["", "third-party, by part:"]
    for label, test in (("ROS (rclpy, *_msgs, cv_bridge, ...)", is_ros),
                        ("torch (torch, torchvision, timm)", lambda n: n in TORCH)):
        hits = [a for a in s.arrows if not a.internal and test(a.target)]
        eager = sorted({s.part_of[a.source] for a in hits if not a.lazy})
        lazy_only = sorted({s.part_of[a.source] for a in hits} - set(eager))
        text = ", ".join(eager) or "none"
        if lazy_only:
            where = sorted({f"{short(a.source)}.{a.function}" for a in hits
                            if s.part_of[a.source] in lazy_only})
            text += f"; only inside functions: {', '.join(lazy_only)} ({', '.join(where)})"
        lines.append(f"  {label}: {text}")

    lines.append("")
    lines += _problem_lines(s)
    for part in arrows_of:
        lines += ["", f"every import from or into '{part}':"]
        for a in s.internal:
            src, dst = s.part_of[a.source], s.part_of[a.target]
            if (src == part) != (dst == part):
                lines.append(f"  {a}   [{a.where(s.package)}]")
    return "\n".join(lines)


def _targets(part: str, groups: Dict[Tuple[str, str], List[Arrow]]) -> str:
    out = []
    for (a, b), group in sorted(groups.items()):
        if a == part:
            out.append(b + ("*" if all(x.lazy for x in group) else ""))
    return ", ".join(out) or "(no gaze_perception imports)"


def _problem_lines(s: Structure) -> List[str]:
    lines = [f"file circles: {len(s.file_circles) or 'none'}"]
    for c in s.file_circles:
        lines.append("  " + " <-> ".join(short(m) for m in c))
        lines += _circle_lines(s, c, of_parts=False)
    lines.append(f"arrows up the layer order: {len(s.upward) or 'none'}")
    for a in s.upward:
        low, high = (LAYERS[s.layer_of[s.part_of[m]]][0] for m in (a.source, a.target))
        lines.append(f"  {a}   [{a.where(s.package)}]  ('{low}' imports '{high}')")
    lines.append(f"part circles: {len(s.part_circles) or 'none'}")
    for c in s.part_circles:
        lines.append("  " + " <-> ".join(c))
        lines += _circle_lines(s, c, of_parts=True)
    if s.misfits:
        lines.append(f"parts in no layer that fit nowhere: {len(s.misfits)}")
        lines += [f"  {m}" for m in s.misfits]
    if s.missing:
        lines.append(f"imports of modules that do not exist: {len(s.missing)}")
        lines += [f"  {a}   [{a.where(s.package)}]" for a in s.missing]
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arrows", metavar="PART", action="append", default=[],
                    help="also list every import from or into PART (repeatable)")
    ap.add_argument("--package", type=Path, default=PACKAGE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    s = analyse(args.package)
    print(picture(s, args.arrows))
    return 1 if s.problems else 0


if __name__ == "__main__":
    sys.exit(main())
