#!/usr/bin/env python3
"""Checks that docs/architecture.md's "Where the code is" table names only
paths that exist, and that no document or source points outside the
repository. A move that forgets the table fails the suite here.

In a cell, the first path of a list is whole (`crates/x/src/a.rs`); the
bare file names after it (`b.rs`) live in the same folder.
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
text = (root / "docs/architecture.md").read_text()
section = text.split("## Where the code is", 1)[1]
missing = []
checked = 0
for line in section.splitlines():
    if not line.startswith("|") or line.startswith("| ---") or line.startswith("| concern"):
        continue
    cells = [c.strip() for c in line.strip("|").split("|")]
    folder = None
    for name in re.findall(r"`([^`]+)`", cells[-1]):
        if "/" in name:
            path = pathlib.Path(name.rstrip("/"))
            folder = path.parent if path.suffix else path
        elif folder is not None:
            path = folder / name
        else:
            path = pathlib.Path(name)
        checked += 1
        if not (root / path).exists():
            missing.append(str(path))

tracked = subprocess.run(
    ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
).stdout.split()
outside = []
for name in tracked:
    if name == "tests/docs_paths.py" or not name.endswith((".md", ".rs", ".sh", ".py", ".toml", ".yaml")):
        continue
    body = (root / name).read_text(errors="replace")
    if "../shared" in body or "DESIGN.md" in body:
        outside.append(name)

for path in missing:
    print(f"docs/architecture.md names {path}, which does not exist", file=sys.stderr)
for name in outside:
    print(f"{name} points outside the repository (../shared or DESIGN.md)", file=sys.stderr)
if missing or outside or checked == 0:
    sys.exit(1)
print(f"docs paths: {checked} paths in the code table exist; nothing points outside the repository")
