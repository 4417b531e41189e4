"""Every command's `--help` ends with examples, and a bad flag is one line."""

from __future__ import annotations

import argparse

import pytest

from stream.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The command paths under `parser`: (), ("topics",), ("topics", "create"), …"""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*path, name))
    return found


def parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    return parser


def test_the_walk_sees_every_command() -> None:
    found = {" ".join(path) for path in commands(build_parser())}
    assert {"", "attribute", "tail", "produce", "topics", "topics create", "topics list", "worker"} <= found
    assert len(found) == 11  # the root, 8 commands, 2 topics actions


@pytest.mark.parametrize("path", commands(build_parser()), ids=lambda p: " ".join(p) or "touchstream")
def test_every_help_shows_an_example_of_itself(path: tuple[str, ...]) -> None:
    """An "examples:" block with at least one line running this very command."""
    help_text = parser_of(path).format_help()
    assert "\nexamples:\n" in help_text
    block = help_text.split("\nexamples:\n", 1)[1].split("\n\n", 1)[0]
    command = " ".join(("touchstream", *path))
    assert any(command in line for line in block.splitlines()), block


def test_a_bad_flag_is_one_line_naming_the_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["tail", "t", "-n", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "touchstream tail: error: argument -n/--count: must be 1 or more, got 0 "
        "(see touchstream tail --help)\n"
    )
