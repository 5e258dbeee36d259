"""The docs match the code: every public name and every CLI command and option is documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer

import gan_adapters
from gan_adapters.cli.app import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_public_name_is_in_the_api_reference():
    api = (DOCS / "api.md").read_text()
    missing = [name for name in gan_adapters.__all__ if not re.search(rf"`{re.escape(name)}[`(]", api)]
    assert not missing, f"undocumented in docs/api.md: {missing}"


def test_every_command_and_option_is_in_the_cli_reference():
    cli_doc = (DOCS / "cli.md").read_text()
    group = typer.main.get_command(app)
    assert group.commands, "the CLI has commands"
    for name, command in group.commands.items():
        assert f"gan-adapters {name}" in cli_doc, f"command {name} is not in docs/cli.md"
        for param in command.params:
            for option in param.opts + param.secondary_opts:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}" in cli_doc or f"/{option}" in cli_doc, (
                        f"{name} {option} is not in docs/cli.md"
                    )


def test_docs_link_to_files_that_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every `gan-adapters ...` command line in a code block of the README, the docs and --help
    examples, as (where, arguments): continuation lines joined, comments dropped."""
    import shlex

    pages = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
    found = []
    for page in pages:
        language = None  # inside a code block: its language ("" when unnamed)
        for line in page.read_text().replace("\\\n", " ").splitlines():
            if line.startswith("```"):
                language = line[3:].strip() if language is None else None
                continue
            line = re.sub(r"\s+#.*$", "", line.strip())
            if language in ("", "sh", "bash") and line.startswith("gan-adapters "):
                found.append((f"{page.name}: {line}", shlex.split(line)[1:]))
    return found


def test_every_documented_command_line_parses():
    """The docs' commands, run as far as the command line goes (options, arguments, their types):
    a renamed or removed flag, a missing argument or a stale example fails here."""
    group = typer.main.get_command(app)
    commands = documented_commands()
    assert len(commands) > 20, "the docs show the commands"
    for where, args in commands:
        name, *rest = args
        assert name in group.commands, f"{where}: no command {name!r}"
        try:
            group.commands[name].make_context(name, [a.replace("$OUT", "out") for a in rest])
        except Exception as exc:  # typer's own click raises its usage errors
            raise AssertionError(f"{where}: {getattr(exc, 'format_message', exc.__str__)()}") from None
