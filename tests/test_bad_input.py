"""Bad input never crashes: recipe values checked before anything runs and named as the user wrote
them, a user's factory that fails, a class that means something, Ctrl-C that says how to go on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_training import adapter_file_tensors, tiny_config

import gan_adapters as ga
from gan_adapters.cli.app import main
from gan_adapters.errors import RunInterruptedError
from gan_adapters.settings import Rule, rule_of
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.training.embedding import embedding_table
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.trainer import train

TESTS = Path(__file__).resolve().parent
EMOJI = TESTS.parent / "examples" / "data" / "emoji-faces"


def refusal(args: list[str], capsys) -> str:
    """Run the CLI in-process; the one line it refused with (exit 2 asserted)."""
    with pytest.raises(SystemExit) as stopped:
        main(args)
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


RECIPE_CASES = [
    ("steps = 3.7", "recipe.toml: steps must be a whole number, got 3.7"),
    ("batch_size = true", "recipe.toml: batch_size must be a whole number, got true"),
    ('adapter = "ssa"', "recipe.toml: adapter must be a table, got the string 'ssa'"),
    ('steps = "ten"', "recipe.toml: steps must be a whole number, got the string 'ten'"),
    ('lr = "1e-3"', "recipe.toml: lr must be a number, got the string '1e-3'"),
    ("lr = nan", "recipe.toml: lr must be a finite number, got nan"),
    ("lr = 0.0", "recipe.toml: lr must be above 0, got 0"),
    ('recipe = "gan"', "recipe.toml: recipe must be one of supervised, adversarial, got 'gan'"),
    ("[adapter]\nkind = 5", "recipe.toml: adapter.kind must be text, got 5"),
    ("[adapter]\ngroups = 0", "recipe.toml: adapter.groups must be at least 1, got 0"),
    ('log_with = ["foo"]', "recipe.toml: log_with names an unknown tracker 'foo'"),
]


@pytest.mark.parametrize(("line", "message"), RECIPE_CASES, ids=[c[0] for c in RECIPE_CASES])
def test_a_bad_recipe_value_names_its_key_in_the_file_and_creates_nothing(line, message, tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    key = "data" if line.startswith("[") else None
    body = f'data = "{EMOJI}"\n{line}\n' if key else f'{line}\ndata = "{EMOJI}"\n'
    recipe.write_text(body)
    out = tmp_path / "run"
    err = refusal(["finetune", str(recipe), "-o", str(out)], capsys)
    assert message in err.replace(str(tmp_path) + "/", "")
    assert not out.exists()


def test_a_recipe_without_data_is_refused_not_run_on_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipe.toml").write_text("steps = 2\n")
    err = refusal(["finetune", "recipe.toml"], capsys)
    assert "recipe.toml: data is missing: name the folder of target images" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"]


def test_a_bad_value_on_the_command_line_is_named_by_its_flag(tmp_path, capsys):
    err = refusal(["finetune", str(EMOJI), "--log-with", "foo", "-o", str(tmp_path / "r")], capsys)
    assert err.startswith("error: --log-with names an unknown tracker 'foo'")
    if __import__("importlib").util.find_spec("wandb") is None:
        err = refusal(["finetune", str(EMOJI), "--log-with", "wandb", "-o", str(tmp_path / "r")], capsys)
        assert "--log-with names wandb, which is not installed: pip install wandb" in err
    with pytest.raises(ga.ConfigError, match="log_with names an unknown tracker 'foo'"):
        TrainConfig(data="x", log_with=["foo"])  # in Python, the keyword


RULED = [(f.name, rule_of(f)) for f in __import__("dataclasses").fields(TrainConfig) if rule_of(f) != Rule()]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(RULED),
    value=st.one_of(
        st.booleans(), st.text(max_size=5), st.floats(allow_nan=True), st.integers(-(10**6), 10**6)
    ),
)
def test_any_recipe_value_is_accepted_or_refused_in_one_line_naming_its_key(field, value, tmp_path_factory):
    """Property: whatever a recipe holds for a ruled key, TrainConfig either takes it (and it then
    meets the rule) or refuses it with a ConfigError that names the key."""
    name, rule = field
    try:
        config = TrainConfig.from_dict({"data": "x", name: value})
    except ga.ConfigError as exc:
        assert str(exc).startswith(name) or name in str(exc)
        return
    accepted = getattr(config, name)
    assert rule.problem(accepted) == ""
    assert not isinstance(accepted, bool) or isinstance(TrainConfig.__dataclass_fields__[name].default, bool)


def test_a_learned_class_embedding_starts_from_the_chosen_class_and_is_range_checked(tmp_path):
    config = dict(
        model="tiny_models:tiny_biggan_deep", adapter=AdapterConfig(kind="ssa"), steps=1, embedding_lr=1e-4
    )
    from tiny_models import tiny_biggan_deep

    table = embedding_table(tiny_biggan_deep().model.embeddings).detach()
    for label in (3, 5):
        result = train(tiny_config(class_label=label, **config), tmp_path / f"class{label}")
        learned = adapter_file_tensors(result.paths.adapters)["extra/class_embedding"]
        assert (learned - table[label]).abs().max() < 2e-4, "one Adam step of 1e-4 from the class's entry"
        assert (learned - table.mean(0)).abs().max() > 1e-2
    with pytest.raises(ga.ConfigError, match=r"class_label must be below \d+ \(the classes of"):
        train(tiny_config(class_label=10_000, **config), tmp_path / "too-big")
    with pytest.raises(ga.ConfigError, match="class_label applies to class-conditional generators"):
        train(tiny_config(class_label=1), tmp_path / "unconditional")
    assert not (tmp_path / "too-big").exists() and not (tmp_path / "unconditional").exists()


def test_ctrl_c_checkpoints_between_steps_and_resume_matches_an_uninterrupted_run(tmp_path):
    whole = train(tiny_config(), tmp_path / "whole")

    def interrupt_at_step_5(report) -> None:
        if report.step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(
        RunInterruptedError, match=r"after step 5 of 12; .*checkpoint.pt holds step 5"
    ) as info:
        train(tiny_config(), tmp_path / "split", on_step=interrupt_at_step_5)
    assert info.value.step == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler is put back"
    resumed = train(tiny_config(), tmp_path / "split", resume=True)
    a, b = adapter_file_tensors(whole.paths.adapters), adapter_file_tensors(resumed.paths.adapters)
    assert all(torch.allclose(a[key], b[key], rtol=0, atol=1e-6) for key in a)


def test_ctrl_c_on_the_command_line_prints_the_command_that_resumes_and_exits_130(
    tmp_path, capsys, monkeypatch
):
    import gan_adapters.training.trainer as trainer

    def interrupting(session, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return original(session, step)

    original = trainer._train_step
    monkeypatch.setattr(trainer, "_train_step", interrupting)
    out = tmp_path / "run"
    args = [
        "finetune",
        str(EMOJI),
        "-m",
        "tiny_models:tiny_dcgan",
        "--trust-code",
        "--images",
        "4",
        "--steps",
        "8",
        "--perceptual",
        "none",
        "--checkpoint-every",
        "100",
        "-o",
        str(out),
        "--overwrite",
    ]
    with pytest.raises(SystemExit) as stopped:
        main(args)
    err = capsys.readouterr().err
    assert stopped.value.code == 130
    assert f"{out}/checkpoint.pt holds step 4: --resume goes on from there" in " ".join(err.split())
    resume_line = err.strip().splitlines()[-1].split()
    assert (
        resume_line[0] == "gan-adapters"
        and resume_line[-1] == "--resume"
        and "--overwrite" not in resume_line
    )


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    with pytest.raises(ga.GanAdaptersError):
        train(tiny_config(data=str(tmp_path / "no-images")), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    kept = tmp_path / "mine"
    kept.mkdir()
    with pytest.raises(ga.GanAdaptersError):
        train(tiny_config(data=str(tmp_path / "no-images")), kept)
    assert kept.is_dir(), "a folder the user made is not removed"


def test_a_user_factory_that_fails_is_one_line_in_the_users_terms(tmp_path, capsys):
    factory = tmp_path / "mine.py"
    factory.write_text("def make():\n    raise ValueError('weights not found')\n\nhelper = 3\n")
    assert refusal(["inspect", f"{factory}:make"], capsys).endswith(
        "mine.py:make raised ValueError: weights not found"
    )
    err = refusal(["inspect", f"{factory}:missing"], capsys)
    assert err.endswith("mine.py has no 'missing'; it defines: make") and "_gan_adapters_user" not in err


def test_pretrain_on_an_image_and_eval_on_one_image_are_clear_refusals(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    err = refusal(["pretrain", str(tmp_path / "one.png"), "-o", str(tmp_path / "out")], capsys)
    assert "one.png is not a labelled image tensor file" in err and "codec" not in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "real").mkdir()
    Image.new("RGB", (8, 8), "white").save(tmp_path / "real" / "a.png")
    err = refusal(["eval", str(tmp_path), str(tmp_path / "real"), "--no-cache"], capsys)
    assert "need at least 2 images on each side, got 1 generated and 1 real" in err


def test_blends_refuse_a_list_a_missing_weight_and_a_name_given_twice():
    from gan_adapters.adapted.several import parse_weights

    model = ga.inject(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4)),
        kind="ssa",
        adapter_name="faces",
    )
    with pytest.raises(ga.ConfigError, match=r"takes weights as \{name: weight\}.*got a list"):
        ga.blend(model, ["faces"])
    with pytest.raises(ga.ConfigError, match="'faces' has no weight"):
        parse_weights("faces", ["faces", "animals"])
    with pytest.raises(ga.ConfigError, match="names 'faces' twice"):
        parse_weights("faces:0.5,faces:0.2", ["faces", "animals"])
    assert parse_weights("faces:0.5,animals:-0.5", ["faces", "animals"]) == {"faces": 0.5, "animals": -0.5}
