"""The project's docs name files that exist: a module renamed or removed shows up here.

Every backticked path under one of the project's directories in ``docs/*.md`` (`server/node.py`,
`docs/groups.md`, `client/tools/`) must exist in the checkout. A path with a placeholder
(`<topic>-<partition>/`) is a pattern, not a file, and is left alone. Pure: reads files only.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
_PROJECT_DIRS = ("client", "kraft", "server", "storage", "scripts", "tests", "docs", "compose")
_PATH = re.compile(r"`((?:" + "|".join(_PROJECT_DIRS) + r")/[A-Za-z0-9_./<>-]*)`")


def test_the_docs_directory_has_the_pages_the_readme_names() -> None:
    names = {doc.name for doc in DOCS}
    assert {"api.md", "design.md", "settings.md", "groups.md", "binary-records.md"} <= names


def test_every_project_path_a_doc_names_exists() -> None:
    missing = []
    checked = 0
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in _PATH.finditer(text):
            path = match.group(1)
            if "<" in path:
                continue
            checked += 1
            if not (ROOT / path).exists():
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"docs/{doc.name}:{line}: {path}")
    assert not missing, "docs name files that do not exist:\n" + "\n".join(missing)
    assert checked > 50, f"only {checked} paths found: is the pattern still right?"
