"""README.md and docs/*.md: what they link to, run and name exists (no ROS, a second or two).

1. every relative markdown link resolves to a file, and its #anchor to a heading there
   (GitHub's slugs);
2. every `gaze-perception <sub> [<subsub>]` in a fenced code block names a real subcommand;
3. every `make <target>` in code names a target of the Makefile;
4. every repository path (`benchmarks/x.py`, `config/x.yaml`, `launch/x.launch.py`, ...), launch file
   and pipeline name (`--config NAME`, `config:=NAME`) the pages mention exists.
"""
from __future__ import annotations

import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
COMMENT = re.compile(r"(^|\s)#.*$")
CLI = re.compile(r"(?:^|[\s;&|(])(?:\S*/)?gaze-perception\s+(\S+)(?:\s+(\S+))?"
                 r"|-m\s+gaze_perception\.cli\.main\s+(\S+)(?:\s+(\S+))?")
MAKE = re.compile(r"(?:^|[\s;&|(])make((?:\s+[A-Za-z0-9_.][A-Za-z0-9_.-]*(?![=\w.-]))+)")
LITERAL = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\|[a-z0-9][a-z0-9_-]*)*")
REPO_PATH = re.compile(r"(?<![\w./$~-])((?:benchmarks|tools|config|launch|tests|weights|gaze_perception|gaze_msgs)"
                       r"/[\w./-]*[\w-]\.(?:py|ya?ml|xml|txt|md|pt|csv|msg|json|html))(?![\w/-])")
LAUNCH_FILE = re.compile(r"ros2\s+launch\s+gaze_perception\s+(\S+\.launch\.py)")
CONFIG_NAME = re.compile(r"(?:--config\s+|(?<![\w-])config:=)([A-Za-z0-9_-]+)(?![\w./-])")


class Page:
    """A markdown file split into prose (code blanked out, offsets kept) and fenced code lines."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
        self.text = path.read_text(encoding="utf-8")
        prose, self.code = [], []  # code: (line number, line)
        fence = None
        for number, line in enumerate(self.text.split("\n"), 1):
            m = FENCE.match(line)
            if fence is None and m:
                fence = m.group(1)
                prose.append("")
            elif fence is not None:
                if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                        and not line.strip()[len(m.group(1)):].strip():
                    fence = None
                else:
                    self.code.append((number, line))
                prose.append("")
            else:
                prose.append(line)
        self.prose_with_code_spans = "\n".join(prose)
        self.inline_code = [(self.line_of(m.start(), self.prose_with_code_spans), m.group(2).strip())
                            for m in INLINE_CODE.finditer(self.prose_with_code_spans)]
        self.prose = INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), self.prose_with_code_spans)

    @staticmethod
    def line_of(offset: int, text: str) -> int:
        return text.count("\n", 0, offset) + 1

    def where(self, line: int) -> str:
        return f"{self.name}:{line}"

    def anchors(self) -> set[str]:
        seen: dict[str, int] = {}
        out = set(HTML_ANCHOR.findall(self.text))
        for line in self.prose_with_code_spans.split("\n"):
            m = HEADING.match(line)
            if not m:
                continue
            slug = github_slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
        return out


def github_slug(heading: str) -> str:
    """GitHub's heading anchors: the text as rendered (links by their text, no markup), lowercase,
    punctuation except - and _ dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@lru_cache(maxsize=None)
def page(path: Path) -> Page:
    return Page(path)


def fail_if(problems: list[str], what: str) -> None:
    assert not problems, f"{len(problems)} {what}:\n  " + "\n  ".join(problems)


def test_pages_exist():
    assert (REPO / "README.md").is_file()
    assert len(PAGES) > 1, "docs/*.md not found"


# 1 --------------------------------------------------------------------------------------------
def test_relative_links_resolve():
    problems = []
    for path in PAGES:
        p = page(path)
        for m in LINK.finditer(p.prose):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:|//", target, re.I):  # http:, https:, mailto:, ...
                continue
            where = p.where(p.line_of(m.start(), p.prose))
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                problems.append(f"{where}: link to {target!r}: {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest} does not exist")
                continue
            if anchor and dest.suffix == ".md":
                if anchor not in page(dest).anchors():
                    problems.append(f"{where}: link to {target!r}: no heading with anchor #{anchor} "
                                    f"in {dest.relative_to(REPO)}")
    fail_if(problems, "broken link(s) in README.md / docs")


# 2 --------------------------------------------------------------------------------------------
def _invocations():
    """(where, sub, subsub or None) for every gaze-perception call in a fenced code block."""
    for path in PAGES:
        p = page(path)
        for number, line in p.code:
            for m in CLI.finditer(COMMENT.sub("", line)):
                sub, subsub = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
                yield p.where(number), sub, subsub


def _parser():
    try:
        from gaze_perception.cli import main as cli_main
    except ImportError:
        return None
    build = next((getattr(cli_main, n) for n in ("build_parser", "make_parser", "_build_parser")
                  if hasattr(cli_main, n)), None)
    try:
        return build() if build else None
    except ImportError:
        return None


def _choices(parser):
    """The words the first positional of `parser` takes: subcommands, or a positional's choices."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
        if not action.option_strings and action.choices:
            return {c: None for c in action.choices}
    return None


def _check_in_process(parser, invocations) -> list[str]:
    problems = []
    top = _choices(parser)
    for where, sub, subsub in invocations:
        if not LITERAL.fullmatch(sub):  # an option (--help) or a placeholder
            continue
        for word in sub.split("|"):
            if word not in top:
                problems.append(f"{where}: 'gaze-perception {word}': no such subcommand "
                                f"(known: {', '.join(sorted(top))})")
                continue
            inner = _choices(top[word]) if top[word] is not None else None
            if inner is None or subsub is None or not LITERAL.fullmatch(subsub):
                continue
            for word2 in subsub.split("|"):
                if word2 not in inner:
                    problems.append(f"{where}: 'gaze-perception {word} {word2}': {word2!r} is not one "
                                    f"of {', '.join(sorted(inner))}")
    return problems


def _check_by_subprocess(invocations) -> list[str]:
    problems, results = [], {}
    for where, sub, subsub in invocations:
        if not LITERAL.fullmatch(sub):
            continue
        for word in sub.split("|"):
            words = [[word]]
            if subsub is not None and LITERAL.fullmatch(subsub):
                words = [[word, w] for w in subsub.split("|")]
            for argv in words:
                key = tuple(argv)
                if key not in results:
                    r = subprocess.run([sys.executable, "-m", "gaze_perception.cli.main", *argv, "--help"],
                                       cwd=REPO, capture_output=True, text=True, timeout=120)
                    ok = r.returncode == 0
                    if not ok and len(argv) == 2 and "invalid choice" not in r.stderr:
                        ok = True  # the second word is an argument, not a subcommand
                    results[key] = (ok, r.stderr.strip().splitlines()[-1:] or [""])
                ok, err = results[key]
                if not ok:
                    problems.append(f"{where}: 'gaze-perception {' '.join(argv)} --help' failed: {err[0]}")
    return problems


def test_cli_invocations_name_real_subcommands():
    invocations = list(_invocations())
    assert invocations, "no gaze-perception invocation found in the code blocks"
    parser = _parser()
    problems = (_check_in_process(parser, invocations) if parser is not None
                else _check_by_subprocess(invocations))
    fail_if(problems, "gaze-perception invocation(s) in README.md / docs name no real subcommand")


# 3 --------------------------------------------------------------------------------------------
def makefile_targets() -> set[str]:
    targets = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        m = re.match(r"^([^\s:#=$][^:#=]*?)\s*::?(?!=)(.*)$", line)
        if not m or line.startswith("\t"):
            continue
        names, rest = m.group(1).split(), m.group(2)
        if names == [".PHONY"]:
            targets.update(rest.split("#")[0].split())
        else:
            targets.update(n for n in names if "$" not in n and "%" not in n)
    return targets


def test_make_targets_exist():
    targets = makefile_targets()
    problems = []
    for path in PAGES:
        p = page(path)
        snippets = [(n, COMMENT.sub("", line)) for n, line in p.code]
        snippets += [(n, code) for n, code in p.inline_code if code.startswith("make ")]
        for number, text in snippets:
            for m in MAKE.finditer(text):
                for target in m.group(1).split():
                    if target not in targets:
                        problems.append(f"{p.where(number)}: 'make {target}': no such target in the "
                                        f"Makefile (targets: {', '.join(sorted(targets))})")
    fail_if(problems, "make target(s) in README.md / docs missing from the Makefile")


# 4 --------------------------------------------------------------------------------------------
def test_named_paths_exist():
    problems = []
    for path in PAGES:
        p = page(path)
        lines = p.text.split("\n")
        for number, line in enumerate(lines, 1):
            where = p.where(number)
            for m in REPO_PATH.finditer(line):
                if not (REPO / m.group(1)).exists():
                    problems.append(f"{where}: {m.group(1)} does not exist")
            for m in LAUNCH_FILE.finditer(line):
                if not (REPO / "launch" / m.group(1)).is_file():
                    problems.append(f"{where}: launch file {m.group(1)}: launch/{m.group(1)} does not exist")
            for m in CONFIG_NAME.finditer(line):
                if not (REPO / "config" / f"{m.group(1)}.yaml").is_file():
                    problems.append(f"{where}: pipeline {m.group(1)!r}: config/{m.group(1)}.yaml does not exist")
    fail_if(problems, "path(s) named in README.md / docs that do not exist")


# the checker itself -----------------------------------------------------------------------------
def test_github_slugs():
    assert github_slug("What `make demo` does") == "what-make-demo-does"
    assert github_slug("With the ROS 2 tools: `ros2 launch`, lifecycle, parameters, REP-155, RViz") == \
        "with-the-ros-2-tools-ros2-launch-lifecycle-parameters-rep-155-rviz"
    assert github_slug("Gaze direction (appearance-based)") == "gaze-direction-appearance-based"
    assert github_slug("Training: shared flags, resuming") == "training-shared-flags-resuming"
    assert github_slug("snake_case [link](x.md)") == "snake_case-link"


def test_checkers_find_broken_items(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("# Title\n[ok](#title) [bad](#nope) `[not a link](zz.md)`\n"
                  "```bash\nmake nothing-such  # make comment\n.venv/bin/gaze-perception bag record s\n"
                  "gaze-perception train|eval eye-state|no-such-task\n# ## not a heading\n```\n")
    p = Page(md)
    links = [m.group(1) for m in LINK.finditer(p.prose)]
    assert links == ["#title", "#nope"]
    assert p.anchors() == {"title"}
    code = [COMMENT.sub("", line) for _, line in p.code]
    assert [m.group(1).split() for line in code for m in MAKE.finditer(line)] == [["nothing-such"]]
    calls = [(m.group(1), m.group(2)) for line in code for m in CLI.finditer(line)]
    assert calls == [("bag", "record"), ("train|eval", "eye-state|no-such-task")]
    assert {"demo", "test"} <= makefile_targets()
