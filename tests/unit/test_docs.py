"""The docs a newcomer walks: a short README, links that lead somewhere, `oanet` commands that exist.

Pages are README.md and docs/*.md. Code and params.yaml point into docs/ by page and
section name (`docs/benchmarks.md, "MT-AOI benchmark"`); those pointers are checked too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README_MAX_LINES = 160
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# `oanet SUB [SUB2]` where a shell command starts: line start, after ; & | ( or a `$ ` prompt
SHELL_OANET = re.compile(r"(?:^|[;&|(]\s*|\$\s+)oanet\s+([a-z][\w-]*)(?:\s+([a-z][\w-]*))?")
INLINE_OANET = re.compile(r"`oanet ([a-z][\w-]*)(?: ([a-z][\w-]*))?")
POINTER = re.compile(r"docs/([\w-]+\.md)(?:, \"([^\"]+)\")?")


def _pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _split(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, lines inside fenced code blocks)."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            prose.append(line)
    return prose, code


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _split(page.read_text())[0]:
        m = HEADING.match(line)
        if m:
            base = _slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def _headings(page: Path) -> list[str]:
    return [m.group(2) for line in _split(page.read_text())[0] if (m := HEADING.match(line))]


@pytest.fixture(scope="module")
def commands() -> dict:
    """{name: set of its subcommands (empty for a plain command)} of the `oanet` app."""
    from typer.main import get_command

    from flows.cli import app

    top = get_command(app).commands
    return {name: set(getattr(cmd, "commands", {}) or ()) for name, cmd in top.items()}


def _check_mention(commands: dict, sub: str, sub2: str | None, where: str) -> list[str]:
    if sub not in commands:
        return [f"{where}: `oanet {sub}` is no oanet command (oanet --help lists {sorted(commands)})"]
    if commands[sub] and sub2 not in commands[sub]:
        return [f"{where}: `oanet {sub} {sub2 or ''}` names no subcommand of {sub} ({sorted(commands[sub])})"]
    return []


def test_the_readme_is_short(repo_root):
    n = len((repo_root / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; the details belong in docs/"


def test_the_docs_pages_exist(repo_root):
    names = {p.name for p in (repo_root / "docs").glob("*.md")}
    assert {"data-contract.md", "ocr.md", "models-and-gate.md", "evaluation.md", "operations.md",
            "bring-your-own-data.md", "benchmarks.md"} <= names


def test_every_relative_link_leads_to_a_file_and_heading(repo_root):
    broken = []
    for page in _pages(repo_root):
        for line in _split(page.read_text())[0]:
            for target in LINK.findall(line):
                if SCHEME.match(target):
                    continue
                path, _, anchor = target.partition("#")
                dest = (page.parent / path).resolve() if path else page
                where = f"{page.relative_to(repo_root)}: ({target})"
                if not dest.exists():
                    broken.append(f"{where}: no such file")
                elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                    broken.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, "\n".join(broken)


def test_every_oanet_command_in_a_code_block_exists(repo_root, commands):
    wrong, seen = [], 0
    for page in _pages(repo_root):
        for line in _split(page.read_text())[1]:
            for sub, sub2 in SHELL_OANET.findall(line.split(" #")[0]):
                seen += 1
                wrong += _check_mention(commands, sub, sub2 or None, f"{page.relative_to(repo_root)}: {line.strip()}")
    assert seen, "no `oanet` command in any code block: the pattern is broken"
    assert not wrong, "\n".join(wrong)


def test_every_oanet_command_in_inline_code_exists(repo_root, commands):
    wrong = []
    for page in _pages(repo_root):
        for line in _split(page.read_text())[0]:
            for sub, sub2 in INLINE_OANET.findall(line):
                wrong += _check_mention(commands, sub, sub2 or None, f"{page.relative_to(repo_root)}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_the_readme_command_table_lists_every_command(repo_root, commands):
    readme = (repo_root / "README.md").read_text()
    listed = set(INLINE_OANET.findall(readme))
    missing = [f"oanet {name}" for name, subs in commands.items() if not subs and name not in {s for s, _ in listed}]
    missing += [f"oanet {name} {s}" for name, subs in commands.items() for s in subs if (name, s) not in listed]
    assert not missing, f"README's command table lacks {missing}"


def test_pointers_from_code_and_params_into_docs_lead_to_a_page_and_section(repo_root):
    files = [*(repo_root / "oanet").rglob("*.py"), *(repo_root / "flows").rglob("*.py"),
             *(repo_root / "bench").rglob("*.py"), repo_root / "params.yaml", repo_root / "dvc.yaml"]
    broken = []
    for f in files:
        for name, section in POINTER.findall(f.read_text()):
            page = repo_root / "docs" / name
            where = f"{f.relative_to(repo_root)} -> docs/{name}"
            if not page.is_file():
                broken.append(f"{where}: no such page")
            elif section and not any(section.lower() in h.lower() for h in _headings(page)):
                broken.append(f"{where}: no heading containing {section!r}")
    assert not broken, "\n".join(broken)
