"""Does a GPU queue item fit the device's limits? What travels there, and what comes back.

    python bench/window_check.py carry PATH...    # the tree plus the carried paths: at most 64 MiB
    python bench/window_check.py out OUT          # at most 8 files, 16 MiB each, 64 MiB, 2 folders down

The limits are the device tool's (its README): the working tree (tracked and untracked files git
does not ignore) and the carried paths travel, 64 MiB in all; from OUT come back at most 8 files
of at most 16 MiB each, 64 MiB together, no deeper than OUT/a/b/file, named in letters, digits,
'.', '_' and '-'. `bench/gpu_queue.sh ITEM OUT --dry-run` runs both checks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

MIB = 2**20
TRAVEL_BYTES, FILES_BACK, FILE_BYTES, BACK_BYTES, FOLDERS_DOWN = 64 * MIB, 8, 16 * MIB, 64 * MIB, 2
NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def files_under(path: Path) -> list[Path]:
    """The files of a path (itself, if a file)."""
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def travelling(root: Path, carried: list[Path]) -> tuple[int, int]:
    """(bytes of the working tree, bytes of the carried paths)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    tree = [root / name for name in listed.decode().split("\0") if name and (root / name).is_file()]
    carry = [f for path in carried for f in files_under(root / path)]
    return sum(f.stat().st_size for f in tree), sum(f.stat().st_size for f in carry)


def problems_coming_back(out: Path) -> list[str]:
    """Why some of OUT would not come back (nothing: all of it does)."""
    files = files_under(out)
    found = []
    if len(files) > FILES_BACK:
        found.append(f"{len(files)} files (at most {FILES_BACK} come back)")
    if sum(f.stat().st_size for f in files) > BACK_BYTES:
        found.append(f"{sum(f.stat().st_size for f in files) / MIB:.1f} MiB together (at most 64)")
    for f in files:
        relative = f.relative_to(out)
        if f.stat().st_size > FILE_BYTES:
            found.append(f"{relative}: {f.stat().st_size / MIB:.1f} MiB (at most 16)")
        if len(relative.parts) - 1 > FOLDERS_DOWN:
            found.append(f"{relative}: {len(relative.parts) - 1} folders down (at most {FOLDERS_DOWN})")
        if not all(NAME.match(part) for part in relative.parts):
            found.append(f"{relative}: a name with other characters than letters, digits, '.', '_', '-'")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["carry", "out"])
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    if args.what == "carry":
        missing = [p for p in args.paths if not p.exists()]
        tree, carry = travelling(Path.cwd(), [p for p in args.paths if p.exists()])
        print(
            f"travels: tree {tree / MIB:.1f} MiB + carry {carry / MIB:.1f} MiB "
            f"= {(tree + carry) / MIB:.1f} MiB "
            f"of 64; carried: {' '.join(map(str, args.paths)) or 'nothing'}"
            + (f"; not here (carried as absent): {' '.join(map(str, missing))}" if missing else "")
        )
        sys.exit(0 if tree + carry <= TRAVEL_BYTES else 1)
    (out,) = args.paths
    found = problems_coming_back(out)
    for problem in found:
        print(f"would not come back: {problem}")
    if found:
        sys.exit(1)
    files = files_under(out)
    print(f"comes back: {len(files)} files, {sum(f.stat().st_size for f in files) / MIB:.1f} MiB")


if __name__ == "__main__":
    main()
