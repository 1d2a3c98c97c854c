"""Flags derived from the config dataclasses (sparsevid/cli/flags.py): every RunConfig field has one,
values convert by the field types, precedence defaults < --config-name < --config FILE < flags."""
from __future__ import annotations

import dataclasses
import re
import typing
from fractions import Fraction
from pathlib import Path

import pytest

from sparsevid.cli import build_parser, main
from sparsevid.cli.flags import field_docs, flag_name, negative_name
from sparsevid.cli.run import config_from_args
from sparsevid.configfile import dump_yaml
from sparsevid.errors import SparsevidError
from sparsevid.pipeline import RunConfig, named_config


def _leaf_paths(cls, where=""):
    """Every leaf field of ``cls``, recursively (written here, not taken from the module under test)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_paths(hints[f.name], f"{where}{f.name}.")
        else:
            yield f"{where}{f.name}", hints[f.name]


@pytest.fixture(scope="module")
def run_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return parser, sub.choices["run"]


def _cfg(parser, *argv) -> RunConfig:
    return config_from_args(parser.parse_args(["run", *map(str, argv)]))


def test_every_runconfig_field_has_a_flag(run_parser):
    """A new field without a flag fails here: each leaf path -> --path.with-dashes (INPUT is positional)."""
    _, run = run_parser
    options = run._option_string_actions
    paths = list(_leaf_paths(RunConfig))
    assert len(paths) > 100
    for path, tp in paths:
        if path == "input":
            assert any(a.dest == "input" and not a.option_strings for a in run._actions)
            continue
        name = flag_name(path)
        assert name in options, f"RunConfig.{path} has no flag {name}"
        assert options[name].dest == path
        if tp is bool:
            assert negative_name(path) in options and options[negative_name(path)] is options[name]


def test_help_is_grouped_and_taken_from_the_field_docs(run_parser, capsys):
    _, run = run_parser
    titles = [g.title for g in run._action_groups]
    for section in ("pose", "train", "train.densify", "fixer", "progressive", "path", "fuse", "fuse.flow"):
        assert section in titles
    text = run.format_help()
    assert "Gaussian sigma of the low band" in text  # FuseConfig's Attributes: docstring
    assert "after a refinement, prune the lowest opacities" in text  # a comment at the end of the line
    assert "share of steps that train on pseudo views" in text  # comment lines above the field
    assert "-o OUT, --output OUT" in text and "--steps INT, --train.steps INT" in text
    # the docstrings' Python terms in the command line's words
    body = text.split("options:", 1)[1]
    assert not re.search(r"\bNone\b|\bTrue\b|\bFalse\b|RunConfig\.|\bsparsevid\.\w", body), \
        re.search(r".{60}(?:\bNone\b|\bTrue\b|\bFalse\b|RunConfig\.|\bsparsevid\.\w).{20}", body, re.S)
    assert "(--cpu-coarse-fraction)" in " ".join(text.split())


def test_field_docs_sources():
    from sparsevid.fuse.fusion import FuseConfig
    from sparsevid.gaussians.trainer import TrainConfig

    fd = field_docs(FuseConfig)
    assert fd["band_sigma"].startswith("Gaussian sigma of the low band")
    td = field_docs(TrainConfig)
    assert td["checkpoint_every"].startswith("steps between checkpoints") and "5-minute CPU run" in td["checkpoint_every"]
    assert td["log_every"].startswith("steps between progress updates")  # not the comment of the field above
    rd = field_docs(RunConfig)
    assert rd["start"] == rd["end"] and rd["resume"] != rd["overwrite"]


def test_derived_flags_set_the_config(run_parser):
    parser, _ = run_parser
    c = _cfg(parser, "--train.steps", 7, "--fuse.band-sigma", "3.5", "--fixer.name", "reproject", "--pose.focal", 600,
             "--path.fps", "30000/1001", "--fuse.detail-choices", "1,2, 4", "--train.background", "0.5,0.25,1",
             "--train.densify.refine-every", 50, "--fuse.flow.preset", "fast", "--fuse.no-guided",
             "--progressive.fix-steps", "3 5", "--fixer.options", "{use_flow: false}", "--seed", 3,
             "--max-train-side", "none", "--no-keep-inputs", "--path.extrapolation", "hold", "--fps", "29.97")
    assert c.train.steps == 7 and c.fuse.band_sigma == 3.5 and c.fixer.name == "reproject" and c.pose.focal == 600.0
    assert c.path.fps == Fraction(30000, 1001) and c.fuse.detail_choices == (1.0, 2.0, 4.0)
    assert c.train.background == (0.5, 0.25, 1.0) and c.train.densify.refine_every == 50
    assert c.fuse.flow.preset == "fast" and c.fuse.guided is False and c.progressive.fix_steps == [3, 5]
    assert c.fixer.options == {"use_flow": False} and c.seed == 3 and c.max_train_side is None
    assert c.keep_inputs is False and c.path.extrapolation == "hold" and c.fps == 29.97
    untouched = RunConfig()
    assert c.fuse.region_sigma == untouched.fuse.region_sigma and c.train.lr_means == untouched.train.lr_means
    assert _cfg(parser) == named_config("default")  # no flag: the defaults


@pytest.mark.parametrize("alias, dotted, value, path", [
    (["--steps", "9"], ["--train.steps", "9"], 9, "train.steps"),
    (["--fixer", "none"], ["--fixer.name", "none"], "none", "fixer.name"),
    (["--out-fps", "60"], ["--path.fps", "60"], 60.0, "path.fps"),
    (["--fps", "30000/1001"], ["--fps", "30000/1001"], Fraction(30000, 1001), "fps"),  # was refused, as not a float
    (["--detail-power", "0"], ["--fuse.detail-power", "0"], None, "fuse.detail_power"),
    (["--fuse-mode", "2d"], ["--fuse.mode", "2d"], "2d", "fuse.mode"),
    (["--no-video"], ["--no-write-video"], False, "write_video"),
    (["--progressive"], ["--fixer.progressive"], True, "fixer.progressive"),
    (["--no-enhance"], ["--fixer.no-enhance"], False, "fixer.enhance"),
    (["--focal", "500"], ["--pose.focal", "500"], 500.0, "pose.focal"),
    (["--fix-steps", "3,1"], ["--progressive.fix-steps", "1,3"], [1, 3], "progressive.fix_steps"),
])
def test_alias_and_dotted_flag_agree(run_parser, alias, dotted, value, path):
    parser, _ = run_parser

    def get(cfg):
        for part in path.split("."):
            cfg = getattr(cfg, part)
        return cfg

    a, b = _cfg(parser, *alias), _cfg(parser, *dotted)
    assert a == b and get(a) == value


def test_precedence_defaults_named_config_file_flags(run_parser, tmp_path):
    parser, _ = run_parser
    assert _cfg(parser, "--config-name", "sharp").fuse.detail_power == 8.0  # named config over the defaults
    file_cfg = named_config("flow_only", seed=4)
    file_cfg.fuse.band_sigma, file_cfg.train.steps = 1.25, 321
    (tmp_path / "config.yaml").write_text(dump_yaml(file_cfg))
    c = _cfg(parser, "--config", tmp_path / "config.yaml", "--fuse.band-sigma", 9, "--seed", 0)
    assert c.fuse.band_sigma == 9.0 and c.seed == 0  # flags given win over the file ...
    assert c.train.steps == 321 and c.fuse.mode == "2d"  # ... and only those
    assert _cfg(parser, "--config", tmp_path / "config.yaml", "--steps", 5).train.steps == 5
    assert _cfg(parser, "--config", tmp_path / "config.yaml", "--fuse.guided").fuse.guided is True


@pytest.mark.parametrize("argv, needles", [
    (["--train.steps", "many"], ["--train.steps must be an integer or none, got 'many'"]),
    (["--steps", "1.5"], ["--steps must be an integer"]),
    (["--fuse.band-sigma", "wide"], ["--fuse.band-sigma must be a number", "2.5"]),
    (["--path.fps", "x/y"], ["--path.fps"]),
    (["--train.background", "1,2"], ["--train.background must be 3 comma-separated values"]),
    (["--path.extrapolation", "wobble"], ["--path.extrapolation must be one of linear, hold"]),
    (["--device", "gpu"], ["--device must be one of auto, cuda, cpu"]),
    (["--fixer.options", "[1, 2]"], ["--fixer.options must be a YAML mapping"]),
    (["--resume", "--overwrite"], ["--resume", "--overwrite"]),
])
def test_bad_value_is_a_one_line_error(tmp_path, capsys, argv, needles):
    rc = main(["run", str(tmp_path), "-o", str(tmp_path / "OUT"), *argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err and "->" in lines[0], err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not (tmp_path / "OUT").exists()


@pytest.mark.parametrize("text, argv, needles, absent", [
    ("train:\n  steps: -5\n", [], ["config.yaml: train.steps must be a positive integer, got -5",
                                      "correct train.steps in the file", "--steps 2000"], []),
    ("fuse:\n  flow:\n    mirrors: 3\n", [], ["fuse.flow.mirrors must be one of 1, 2, 4, got 3",
                                                  "correct fuse.flow.mirrors in the file"], []),
    ("train:\n  steps: 50\n", ["--steps", "0"], ["--steps must be a positive integer, got 0"],
     ["config.yaml", "train.steps"]),  # the bad value came from the command line: named by its flag
])
def test_a_config_files_bad_value_is_named_by_its_key(tmp_path, capsys, text, argv, needles, absent):
    (tmp_path / "config.yaml").write_text(text)
    for command in ("run", "batch"):
        rc = main([command, str(tmp_path), "-o", str(tmp_path / "OUT"), "--config", str(tmp_path / "config.yaml"),
                   *argv])
        err = capsys.readouterr().err
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        for n in needles:
            assert n in lines[0], (command, n, lines[0])
        for n in absent:
            assert n not in lines[0], (command, n, lines[0])
        assert not (tmp_path / "OUT").exists()


def test_value_from_text_matches_the_yaml_conversion():
    """The flag text and config.yaml go through the same per-type conversion."""
    from sparsevid.configfile import config_from_dict, value_from_text

    assert value_from_text(typing.Optional[int], "none", "k") is None
    assert value_from_text(bool, "yes", "k") is True and value_from_text(bool, "0", "k") is False
    assert value_from_text(Path | None, "a/b", "k") == Path("a/b")
    assert value_from_text(float | Fraction | str | None, "30000/1001", "k") == \
        config_from_dict(RunConfig, {"path": {"fps": "30000/1001"}}).path.fps
    with pytest.raises(SparsevidError, match="k must be int"):
        value_from_text(int, "1.5", "k")


def test_poses_and_train_derive_their_configs():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    from sparsevid.gaussians.trainer import TrainConfig
    from sparsevid.poses.sfm import PoseConfig

    for cmd, cls, prefix in (("poses", PoseConfig, "pose"), ("train", TrainConfig, "train")):
        options = sub[cmd]._option_string_actions
        for path, _ in _leaf_paths(cls):
            assert flag_name(path, prefix) in options, (cmd, path)
    assert sub["poses"]._option_string_actions["--focal"] is sub["poses"]._option_string_actions["--pose.focal"]
    assert sub["train"]._option_string_actions["--steps"] is sub["train"]._option_string_actions["--train.steps"]


def test_with_settings_edits_nested_fields_and_checks_them():
    from sparsevid.configfile import with_settings
    from sparsevid.errors import SparsevidError
    from sparsevid.fuse.fusion import FuseConfig

    base = FuseConfig(learned_passes=1)
    cfg = with_settings(base, {"mode": "2d", "flow.mirrors": 2, "fixed": {"enabled": False}})
    assert (cfg.mode, cfg.flow.mirrors, cfg.fixed.enabled, cfg.learned_passes) == ("2d", 2, False, 1)
    assert cfg.flow.motion == base.flow.motion and cfg.fixed.tolerance == base.fixed.tolerance
    assert (base.mode, base.flow.mirrors, base.fixed.enabled) == ("fuse", FuseConfig().flow.mirrors, True)
    with pytest.raises(SparsevidError, match="unknown setting flow.mirorrs"):
        with_settings(base, {"flow.mirorrs": 2})


@pytest.mark.parametrize("argv", [["-q", "eval", "o", "--gt", "g"], ["eval", "o", "--gt", "g", "-q"],
                                  ["run", "-q", "--device", "cpu"]])
def test_quiet_and_verbose_before_or_after_the_subcommand(argv):
    from sparsevid.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.verbose is False
    assert build_parser().parse_args(["run", "--device", "cpu"]).quiet is False


def test_quiet_lasts_as_long_as_the_command(tmp_path, capsys):
    """`main([... "-q"])` from Python left every later command quiet (a test of `run -q` hid the next test's lines)."""
    from sparsevid import log
    from sparsevid.cli import main

    assert not log.is_quiet()
    assert main(["inspect", "-q", str(tmp_path / "missing")]) == 2
    assert not log.is_quiet() and not log.is_verbose()
    assert main(["inspect", "-v"]) == 0
    assert not log.is_verbose()


def test_print_config_shows_what_would_run_and_runs_nothing(tmp_path, capsys):
    import yaml

    from sparsevid.cli import main

    out = tmp_path / "out"
    assert main(["run", "--print-config", "--steps", "77", "--device", "cpu", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# the configuration `sparsevid run` would use on cpu (with the CPU profile's caps")
    cfg = yaml.safe_load(text)
    assert cfg["train"]["steps"] == 77 and cfg["train"]["max_gaussians"] == cfg["cpu_max_gaussians"]
    assert not out.exists()
    # no abbreviated flags: with ~170 derived flags a prefix is too easily another flag's
    with pytest.raises(SystemExit) as e:
        main(["run", "--video.cr", "30", "--print-config"])
    assert e.value.code == 2 and "unrecognized argument --video.cr (did you mean --video.crf?)" in capsys.readouterr().err


def test_config_yaml_names_the_same_files_from_any_working_folder(tmp_path, monkeypatch):
    """config.yaml kept paths as typed: `run --config A/config.yaml` from another folder found no input (or
    another clip). Paths are absolute now; a Difix hub id that is no local path stays as it is."""
    from sparsevid.pipeline import read_run_config, write_run_config

    (tmp_path / "w" / "clip").mkdir(parents=True)
    (tmp_path / "w" / "flownet.pkl").write_bytes(b"")
    monkeypatch.chdir(tmp_path / "w")
    cfg = RunConfig(input=Path("clip"), output=Path("A"))
    cfg.fuse.flow.gmflow_weights = "flownet.pkl"
    cfg.fixer.difix_weights = "nvidia/difix"
    (tmp_path / "w" / "A").mkdir()
    written = write_run_config(cfg, Path("A"))
    assert cfg.input == Path("clip")  # the caller's config is not changed
    monkeypatch.chdir(tmp_path)
    back = read_run_config(written)
    assert back.input == tmp_path / "w" / "clip" and back.output == tmp_path / "w" / "A"
    assert back.fuse.flow.gmflow_weights == str(tmp_path / "w" / "flownet.pkl")
    assert back.fixer.difix_weights == "nvidia/difix"
    assert f"sparsevid run --config {tmp_path / 'w' / 'A' / 'config.yaml'}" in written.read_text()


def test_a_mistyped_flag_is_named_by_its_command_with_the_closest_flag(capsys):
    """`sparsevid run x --stpes 10` said "unrecognized arguments: --stpes 10" under the top-level usage."""
    from sparsevid.cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", "x", "--stpes", "10"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: sparsevid run" in err
    assert err.strip().splitlines()[-1] == "sparsevid run: error: unrecognized argument --stpes (did you mean --steps?)"
    with pytest.raises(SystemExit):
        main(["run", "x", "--fuse.flow.motoin=linear", "--zzz"])
    assert ("unrecognized argument --fuse.flow.motoin=linear (did you mean --fuse.flow.motion?); also --zzz"
            in capsys.readouterr().err)


def test_a_config_file_takes_none_and_numbers_where_flags_do(tmp_path):
    """`focal: none` (the flags' word for unset) was "pose.focal must be float | None, got 'none'", and
    `start: 2.5` was refused as not a string."""
    from sparsevid.pipeline import read_run_config

    f = tmp_path / "c.yaml"
    f.write_text("pose:\n  focal: none\nstart: 2.5\nend: f75\nmax_train_side: None\n")
    cfg = read_run_config(f)
    assert cfg.pose.focal is None and cfg.start == "2.5" and cfg.end == "f75" and cfg.max_train_side is None
