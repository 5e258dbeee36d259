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
