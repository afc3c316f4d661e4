"""docs/cli.md's reference part is generated from the parser and the settings: it names every command,
option and setting, and the file in the repository is the generated one (`make docs` rewrites it)."""

from __future__ import annotations

import argparse

from tests.conftest import PROJECT
from tribunal.cli import _parser
from tribunal.reference import BEGIN, END, commands_markdown, settings_markdown, spliced
from tribunal.settings import ActionSettings, AuthSettings, Settings

CLI_MD = PROJECT / "docs" / "cli.md"


def test_docs_cli_md_holds_the_reference_as_generated() -> None:
    document = CLI_MD.read_text(encoding="utf-8")
    assert BEGIN in document and END in document
    assert spliced(document) == document, (
        "docs/cli.md is out of date with the parser or the settings: run `make docs`"
    )


def test_the_reference_names_every_command_option_and_setting() -> None:
    commands = commands_markdown()
    parsers = [_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif not isinstance(action, argparse._HelpAction):
                name = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
                assert f"`{name}`" in commands, name
    for command in ("judge", "policy test", "policy list", "serve", "dev", "demo", "report", "consume"):
        assert f"### `tribunal {command}`" in commands
    settings = settings_markdown()
    for name in Settings.model_fields:
        if name not in ("actions", "auth"):
            assert f"`TRIBUNAL_{name.upper()}`" in settings, name
    for section, model in (("ACTIONS", ActionSettings), ("AUTH", AuthSettings)):
        for name in model.model_fields:
            assert f"`TRIBUNAL_{section}__{name.upper()}`" in settings, name
    assert "`opa`" in commands  # the engine choices, from the parser
