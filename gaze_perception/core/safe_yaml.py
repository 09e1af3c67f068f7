"""YAML from files we did not write, with limits: size, nodes after alias expansion ("billion
laughs"), nesting depth and recursive aliases are refused with a clear error before any Python
object is built. Every YAML the package reads goes through `load_yaml_file` / `load_yaml_text`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import yaml

#: largest YAML file read (bytes): pipeline, manifest and calibration files are a few kB
MAX_BYTES = 1 << 20
#: most nodes the document may hold once every alias is expanded
MAX_NODES = 100_000
#: deepest nesting of mappings and sequences
MAX_DEPTH = 64


class YamlError(ValueError):
    """A YAML file that is not valid, or over a limit; the message names the file."""


def _measure(root, what: str, max_nodes: int, max_depth: int) -> None:
    """Nodes after alias expansion and depth of the composed graph, in time linear in the graph
    (an alias refers to the node it names: each distinct node is measured once)."""
    sizes = {}   # id(node) -> (expanded nodes, depth)
    active = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            size = 1 + sum(sizes[id(c)][0] for c in children)
            depth = 1 + max((sizes[id(c)][1] for c in children), default=0)
            if size > max_nodes:
                raise YamlError(f"{what} expands to over {max_nodes} nodes (aliases repeated "
                                "inside aliases?); refused")
            if depth > max_depth:
                raise YamlError(f"{what} is nested over {max_depth} levels deep; refused")
            sizes[key] = (size, depth)
            continue
        if key in sizes:
            continue
        if key in active:
            raise YamlError(f"{what} holds a recursive alias (a node that contains itself); "
                            "refused")
        active.add(key)
        stack.append((node, True))
        if len(active) > max_depth:
            raise YamlError(f"{what} is nested over {max_depth} levels deep; refused")
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than `max_depth` while composing, before the
    scanner has seen the rest of the text (its cost grows with the square of open brackets)."""

    max_depth = MAX_DEPTH
    what = "YAML"

    def compose_node(self, parent, index):
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > self.max_depth:
                raise YamlError(f"{self.what} is nested over {self.max_depth} levels deep; "
                                "refused")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml_text(text: str, what: str = "YAML", max_nodes: int = MAX_NODES,
                   max_depth: int = MAX_DEPTH) -> Any:
    """`yaml.safe_load(text)` within the limits; `what` (e.g. "pipeline config 'x.yaml'")
    starts the error messages."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"{what} is {len(text)} characters, over the {MAX_BYTES} allowed; "
                        "refused")
    loader = _Loader(text)
    loader.max_depth, loader.what = max_depth, what
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise YamlError(f"{what} is not valid YAML: {exc}") from None
        except RecursionError:  # pragma: no cover - the depth limit comes first
            raise YamlError(f"{what} is nested too deeply; refused") from None
        if node is None:
            return None
        _measure(node, what, max_nodes, max_depth)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise YamlError(f"{what} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def load_yaml_file(path: Union[str, Path], what: str = "YAML file",
                   max_bytes: int = MAX_BYTES) -> Any:
    """Read and parse the YAML file `path` within the limits; errors name the file (a folder, a
    missing file, an oversized or hostile one, undecodable text)."""
    path = Path(path)
    label = f"{what} '{path}'"
    if path.is_dir():
        raise YamlError(f"{label} is a folder; expected a YAML file")
    if not path.is_file():
        raise YamlError(f"{label} does not exist")
    size = path.stat().st_size
    if size > max_bytes:
        raise YamlError(f"{label} is {size} bytes, over the {max_bytes} allowed; refused")
    try:
        with open(path, "rb") as fh:
            text = fh.read(max_bytes + 1).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"{label} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise YamlError(f"cannot read {label}: {exc.strerror}") from None
    return load_yaml_text(text, label)
