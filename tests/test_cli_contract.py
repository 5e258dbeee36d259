"""The command line's contract, over every command and option: a value of the wrong type or out of
its declared range is one line, exit 2, no traceback, nothing created. The cases are generated from
the options the commands declare (their types, choices and rules), not written one by one."""

from __future__ import annotations

import typing

import pytest
import typer.main

from gan_adapters.cli.app import app, main
from gan_adapters.settings import Rule

COMMANDS = typer.main.get_command(app).commands


def placeholders(command) -> list[str]:
    """A value for each positional argument, so that parsing reaches the options."""
    values = []
    for param in command.params:
        if param.param_type_name == "argument":
            values += ["placeholder"] * (1 if param.nargs in (1, -1) else param.nargs)
    return values


def bad_values(param) -> list[tuple[str, str]]:
    """(value, why) pairs an option must refuse: a wrong type, and each bound of its rule broken."""
    annotation = param.type_descriptor.annotation
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and arguments:
        annotation = arguments[0]
        origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    cases = []
    if annotation in (int, float):
        cases.append(("not-a-number", "wrong type"))
    if annotation is int:
        cases.append(("2.5", "a fraction for a whole number"))
    if origin is typing.Literal:
        cases.append(("no-such-choice", "not a choice"))
    rule = getattr(param.callback, "rule", None)
    if isinstance(rule, Rule):
        step = 1 if annotation is int else 0.5
        if rule.minimum is not None:
            cases.append((f"{rule.minimum - step:g}", "below its minimum"))
        if rule.above is not None:
            cases.append((f"{rule.above:g}", "at its exclusive bound"))
        if rule.maximum is not None:
            cases.append((f"{rule.maximum + step:g}", "above its maximum"))
    return cases


CASES = [
    pytest.param(name, param.opts[0], value, id=f"{name} {param.opts[0]} {value} ({why})")
    for name, command in COMMANDS.items()
    for param in command.params
    if param.param_type_name == "option"
    for value, why in bad_values(param)
]


def test_every_command_has_cases_and_every_numeric_option_a_range():
    """Nothing escapes the table: every command with numeric options is in it, and every count, size
    or scale a user types has a declared range (the exceptions are values with no natural bound)."""
    covered = {case.values[0] for case in CASES}
    assert {"finetune", "sample", "interpolate", "eval", "pretrain", "inspect"} <= covered
    unbounded = {("pretrain", "--resolution")}  # its choices are the architecture's, checked by its config
    for name, command in COMMANDS.items():
        for param in command.params:
            numeric = param.param_type_name == "option" and param.type_descriptor.annotation in (int, float)
            if numeric and (name, param.opts[0]) not in unbounded:
                assert isinstance(getattr(param.callback, "rule", None), Rule), f"{name} {param.opts[0]}"


@pytest.mark.parametrize(("command", "flag", "value"), CASES)
def test_a_bad_option_value_is_one_line_exit_2_and_creates_nothing(
    command, flag, value, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = [command, *placeholders(COMMANDS[command]), flag, value]
    if command == "pretrain":
        args += ["--out", "run"]
    with pytest.raises(SystemExit) as stopped:
        main(args)
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert flag in lines[0] and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "a refused command creates nothing"


def test_after_ctrl_c_the_hint_is_a_command_that_runs():
    """finetune and pretrain go on with --resume; a sweep, which takes no such flag, with itself."""
    from gan_adapters.cli.app import resume_hint

    message = (
        "stopped by Ctrl-C after step 4 of 8; run/checkpoint.pt holds step 4: `resume` goes on from there"
    )
    finetune = resume_hint(message, ["finetune", "r.toml", "-o", "run", "--overwrite"])
    assert (
        finetune.endswith("gan-adapters finetune r.toml -o run --resume") and "--resume goes on" in finetune
    )
    sweep = resume_hint(message, ["sweep", "r.toml", "-o", "out"])
    assert sweep == (
        "stopped by Ctrl-C after step 4 of 8; the same command goes on from there:\n"
        "  gan-adapters sweep r.toml -o out"
    )
