"""The repository's documents point only at files inside the repository.

Every Markdown link target and every ``*.md`` file name mentioned in a tracked text file
must exist in the repository (relative to the repository root or to the mentioning file).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MD_NAME = re.compile(r"(?<![\w/.-])([\w./-]+\.md)\b")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".ini", ".cfg", ".txt", ""}


def _tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (e.g. an installed copy): nothing to scan")
    return [ROOT / p for p in listed if Path(p).suffix in TEXT_SUFFIXES and (ROOT / p).is_file()]


def _exists(target: str, mentioned_in: Path) -> bool:
    target = target.strip("`'\"")
    return (ROOT / target).exists() or (mentioned_in.parent / target).exists()


def test_every_referenced_document_is_in_the_repository() -> None:
    missing = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        targets = set(MD_NAME.findall(text))
        if path.suffix == ".md":
            targets |= {t for t in MD_LINK.findall(text) if "://" not in t}
        missing += [
            f"{path.relative_to(ROOT)} -> {t}" for t in sorted(targets) if not _exists(t, path)
        ]
    assert not missing, "references to files that are not in the repository:\n" + "\n".join(missing)


def test_the_readme_lists_every_beras_train_flag() -> None:
    """The README's flag table of ``beras train`` is complete (it is generated from
    ``beras train --help``; a new flag must be added to it)."""
    import argparse

    from beras import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = [
        a.option_strings[-1]
        for a in commands.choices["train"]._actions
        if a.option_strings and "--help" not in a.option_strings
    ]
    assert "--threads" in flags
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(--[\w-]+)", readme, re.M))
    assert [f for f in flags if f not in rows] == []
