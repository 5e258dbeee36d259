"""Mutation testing of the modules a change touches, with only the tests that import them (`make mutation`).

mutmut makes one small change at a time in a module (a `+=` for a `=`, `and` for `or`, a constant
off by one...) and runs the module's covering tests; a change no test notices is a survivor, a bug
that would reach users with every test green. It runs in a copy of the tracked files (the working
tree is never touched) and prints the kill rate per module and every survivor, to kill with a test
or explain in one line (docs/reliability.md keeps the rates).

    python bench/mutation.py                                   # modules changed (origin/main or HEAD~1)
    python bench/mutation.py gan_adapters/training/probe.py    # these modules
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).parent / "mutmut"
CHILDREN = int(os.environ.get("MUTATION_CHILDREN", "2"))
"""Test processes at once (MUTATION_CHILDREN): 2 on two cores."""


def changed_modules(base: str | None) -> list[str]:
    """Library modules that differ from `base` (committed or not); without a base, from origin/main
    where the clone has it, else from the commit before HEAD (a fresh clone: the last change)."""
    if base is None:
        known = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "origin/main"], cwd=ROOT, capture_output=True
        )
        base = "origin/main" if known.returncode == 0 else "HEAD~1"
    diff = subprocess.run(["git", "diff", "--name-only", base], cwd=ROOT, capture_output=True, text=True)
    return sorted(p for p in diff.stdout.split() if p.startswith("gan_adapters/") and p.endswith(".py"))


def covering_tests(module: str) -> list[str]:
    """Test files that import the module (by its dotted name, at the top or inside a test)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    found = []
    for test in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(test.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == dotted:
                found.append(str(test.relative_to(ROOT)))
                break
    return found


def run_mutmut(module: str, tests: list[str]) -> dict[str, list[str]]:
    """mutmut over one module in a copy of the tracked tree: mutant names by status."""
    with tempfile.TemporaryDirectory(prefix="mutation-") as folder:
        copy = Path(folder)
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
        for name in files:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
        listed = "\n    ".join(tests)
        (copy / "setup.cfg").write_text(
            f"[mutmut]\npaths_to_mutate = {module}\n"
            "also_copy =\n    gan_adapters/\n    tests/\n    examples/\n"
            f"tests_dir =\n    {listed}\npytest_add_cli_args_test_selection =\n    {listed}\n"
        )
        ran = subprocess.run(
            [str(MUTMUT), "run", "--max-children", str(CHILDREN)], cwd=copy, capture_output=True, text=True
        )
        listing = subprocess.run(
            [str(MUTMUT), "results", "--all", "true"], cwd=copy, capture_output=True, text=True
        )
    statuses: dict[str, list[str]] = {"output": [ran.stderr[-2000:]]} if ran.returncode else {}
    for line in listing.stdout.splitlines():
        match = re.match(r"\s*(\S+__mutmut_\d+): (.+)", line)
        if match:
            statuses.setdefault(match.group(2).strip(), []).append(match.group(1))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="library modules (default: those changed since --base)")
    parser.add_argument("--base", default=None, help="git ref to compare with [origin/main, else HEAD~1]")
    args = parser.parse_args()
    modules = args.modules or changed_modules(args.base)
    if not modules:
        print("no library module changed: name modules to mutate")
        return
    for module in modules:
        tests = covering_tests(module)
        if not tests:
            print(f"{module}: no test imports it; nothing to run")
            continue
        statuses = run_mutmut(module, tests)
        killed, survived = len(statuses.get("killed", [])), statuses.get("survived", [])
        total = killed + len(survived)
        rate = f"{killed / total:.0%}" if total else "n/a"
        print(f"{module}: {killed}/{total} killed ({rate}) by {', '.join(tests)}")
        if "output" in statuses:
            print(f"  mutmut failed: {statuses.pop('output')[0]}")
        for other in sorted(set(statuses) - {"killed", "survived"}):
            print(f"  {other}: {len(statuses[other])}")
        for name in survived:
            print(f"  survived: {name}  (mutmut show {name})")


if __name__ == "__main__":
    main()
