"""Every setting reachable from the command line (issue 29): ``--config.<field>`` generated
from ``LandmarkConfig``, ``--data.<option>`` from the loaders' signatures, one name per source,
and every flag a message names exists.

The fast tests parse flags in-process into a private ``FlagValues``; the ``slow`` ones run the
CLIs as a user does (``trainers/*.py``).
"""

import ast
import dataclasses
import importlib
import inspect
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from keras_landmarks import config, data
from keras_landmarks.cli import _config_flags
from keras_landmarks.cli._flags import define_enum_with_aliases
from keras_landmarks.config import PRESETS, LandmarkConfig, SimilarityParams, WarpParams, override_fields, preset
from keras_landmarks.data import options

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "trainers", "train.py")
LEGACY = ("image_size", "width", "perceptual")
# A valid value other than the preset's, per string field (the other types are computed).
OTHER_STRINGS = {"gaussian_mode": "paper", "normalization": "group", "perceptual": "l2_grad"}


def _parse(*args, dataset="synthetic"):
    fv = flags.FlagValues()
    define_enum_with_aliases("dataset", None, data.TRAINING_SOURCES, "source", flag_values=fv)
    _config_flags.define_config_flags(LEGACY, flag_values=fv)
    _config_flags.define_data_flags(flag_values=fv)
    fv(["prog", f"--dataset={dataset}", *args])
    return fv


def _leaves(cfg) -> dict:
    """Dotted leaf -> value, by walking the dataclasses (independent of ``override_fields``)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in _leaves(value).items()})
        else:
            out[f.name] = value
    return out


def _other(name, value):
    """A value of the same type as ``value``, different from it, that LandmarkConfig accepts."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2 if value else 3
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, tuple):
        return tuple(v / 2 for v in value)
    assert name in OTHER_STRINGS, f"add a valid other value of string field {name} to OTHER_STRINGS"
    return OTHER_STRINGS[name]


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(repr(v) for v in value) if isinstance(value, tuple) else str(value)


BASE = LandmarkConfig(**PRESETS["synthetic"])
OTHER = {name: _other(name, value) for name, value in _leaves(BASE).items()}


def test_the_flags_are_every_leaf_of_the_config_each_with_help():
    assert set(override_fields()) == set(_leaves(LandmarkConfig()))
    assert {f for f in override_fields() if "." in f} == {
        f"{w}.{f.name}" for w in ("target_warp", "source_warp") for f in dataclasses.fields(WarpParams)} | {
        f"equivariance_warp.{f.name}" for f in dataclasses.fields(SimilarityParams)}
    for name in override_fields():
        assert len(_config_flags.field_help(name)) > 10, f"document {name} in the Attributes: docstring"


@pytest.mark.parametrize("name", sorted(_leaves(LandmarkConfig())))
def test_each_field_is_set_by_its_flag_and_round_trips_through_json(name):
    fv = _parse(f"--config.{name}={_text(OTHER[name])}")
    cfg = _config_flags.resolve_config("synthetic", fv)
    want = {**_leaves(BASE), name: OTHER[name]}
    assert _leaves(cfg) == want
    assert LandmarkConfig.from_json(cfg.to_json()) == cfg
    assert LandmarkConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_booleans_also_take_the_no_prefix():
    cfg = _config_flags.resolve_config("synthetic", _parse("--noconfig.sync_batchnorm"))
    assert cfg.sync_batchnorm is False and LandmarkConfig().sync_batchnorm is True


def test_defaults_then_preset_then_flags():
    fv = _parse("--preset=real_faces", "--config.width=8", "--config.source_warp.rotation_deg=12")
    cfg = _config_flags.resolve_config("synthetic", fv)
    assert cfg.width == 8 != PRESETS["real_faces"]["width"] and cfg.source_warp.rotation_deg == 12.0  # the flags
    assert cfg.image_size == PRESETS["real_faces"]["image_size"] != PRESETS["synthetic"]["image_size"]  # the preset
    assert cfg.batch_size == PRESETS["real_faces"]["batch_size"] != LandmarkConfig().batch_size
    assert cfg.gaussian_sigma == LandmarkConfig().gaussian_sigma and "gaussian_sigma" not in PRESETS["real_faces"]
    assert cfg.source_warp.b == LandmarkConfig().source_warp.b  # the rest of the warp: defaults
    # No --preset: the dataset's own.
    assert _config_flags.resolve_config("synthetic", _parse()) == LandmarkConfig(**PRESETS["synthetic"])
    assert _config_flags.resolve_config("folder", _parse(dataset="folder")) == LandmarkConfig()


def test_old_flag_names_are_deprecated_aliases():
    fv = _parse("--image_size=32", "--config.width=8")
    assert _config_flags.resolve_config("synthetic", fv) == BASE.replace(image_size=32, width=8)
    assert _config_flags.deprecation_lines(fv) == [
        "--image_size is deprecated: use --config.image_size (the same setting)"]
    with pytest.raises(ValueError, match=r"--config.width=8 and --width: the same setting twice"):
        _config_flags.resolve_config("synthetic", _parse("--config.width=8", "--width=8"))


@pytest.mark.parametrize("args, message", [
    (["--config.image_size=100"], "--config.image_size=100: image_size must be a power of two"),
    (["--config.image_size=32", "--config.heatmap_size=32", "--config.stem_stride=2"],
     "--config.image_size=32, --config.heatmap_size=32, --config.stem_stride=2: image_size must be"),
    (["--config.stem_stride=3"], "--config.stem_stride=3: stem_stride must be 1 or 2"),
    (["--config.gaussian_mode=gauss"], "--config.gaussian_mode=gauss: gaussian_mode must be 'rot' or 'paper'"),
    (["--config.alpha_init=1,2"], "--config.alpha_init=1.0,2.0: alpha_init needs 6 values"),
    (["--config.batch_size=0"], "--config.batch_size=0: batch_size must be >= 1"),
    (["--width=0"], "--width=0: width must be >= 1"),
    (["--config.learning_rate=-1"], "--config.learning_rate=-1.0: learning_rate must be > 0"),
    (["--config.perceptual=vgg19:/no/such.h5"], "--config.perceptual=vgg19:/no/such.h5: no such weights file"),
])
def test_bad_values_are_errors_naming_the_flag(args, message):
    with pytest.raises(ValueError) as err:
        _config_flags.resolve_config("synthetic", _parse(*args))
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("arg", ["--config.image_size=big", "--config.alpha_init=1,x", "--config.sync_batchnorm=maybe",
                                 "--data.max_offset=1.5"])
def test_values_of_the_wrong_type_are_flag_errors_naming_it(arg):
    with pytest.raises(flags.IllegalFlagValueError, match=re.escape(arg.split("=")[0])):
        _parse(arg, dataset="video")


def test_data_options_are_the_loaders_keyword_parameters():
    """The options read from the source files (no import) are exactly what the imported
    loaders take, minus what the trainer fills, with the same defaults."""
    for (source, pipeline), (module, name) in data.LOADERS.items():
        loader = getattr(importlib.import_module(f"keras_landmarks.data.{module}"), name)
        params = {k: p for k, p in inspect.signature(loader).parameters.items() if k not in options.FILLED}
        found = options.loader_options(module, name)
        assert list(found) == list(params), (source, pipeline)
        for key, option in found.items():
            assert eval(option.default) == params[key].default, (name, key)  # noqa: S307 (our source)
            assert option.help, f"document {key} in {name}'s Args:"
        assert set(inspect.signature(loader).parameters) >= {"image_size", "batch_size", "seed"}


def test_data_flags_reach_the_source_and_are_checked_against_it():
    fv = _parse("--data.tps", "--data.max_offset=5", "--data.cache_dir=~/frames", dataset="video")
    got = _config_flags.data_options("video", "tf_data", fv)
    assert got == {"tps": True, "max_offset": 5, "cache_dir": os.path.expanduser("~/frames")}
    video = importlib.import_module("keras_landmarks.data.video").video_pairs
    inspect.signature(video).bind("dir", **got)  # video_pairs takes them
    with pytest.raises(ValueError, match=r"--data.tps is an option of video, not of --dataset=folder "
                                         r"\(it takes: --data.deterministic\)"):
        _config_flags.data_options("folder", "tf_data", _parse("--data.tps", dataset="folder"))
    with pytest.raises(ValueError, match=r"--data.deterministic is an option of folder, not of "
                                         r"--dataset=folder with --pipeline=numpy"):
        _config_flags.data_options("folder", "numpy", _parse("--nodata.deterministic", dataset="folder"))


def test_the_old_folder_name_is_the_folder_source_with_one_deprecation_line(caplog, monkeypatch):
    from keras_landmarks._internal import sources

    monkeypatch.setattr(sources, "_warned", set())  # the names' home (config and data re-export source_name)
    with caplog.at_level(logging.WARNING, logger="keras_landmarks.config"):
        assert [data.source_name(n) for n in ("image_folder", "image_folder", "folder")] == ["folder"] * 3
    assert [r.getMessage() for r in caplog.records] == [
        "source name 'image_folder' is deprecated: use 'folder' (the same folder source in every program)"]
    assert set(data.TRAINING_SOURCES) & set(data.ANNOTATED_SOURCES) >= {"folder"}
    assert "image_folder" not in data.TRAINING_SOURCES + data.ANNOTATED_SOURCES + tuple(PRESETS)
    assert preset("image_folder") == preset("folder")
    assert _parse(dataset="image_folder")["dataset"].value == "image_folder"  # mapped by the CLI
    with pytest.raises(flags.IllegalFlagValueError, match=re.escape("|".join(data.TRAINING_SOURCES))):
        _parse(dataset="imagefolder")


def test_docs_list_the_flags_as_generated():
    with open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8") as f:
        assert _config_flags.markdown_tables() in f.read(), \
            "regenerate docs/configuration.md's tables: python -m keras_landmarks.cli._config_flags"


# -- the programs, as a user runs them -----------------------------------------------------


def _train(*args, timeout=120):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, TRAIN, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_help_shows_every_field_option_and_preset():
    proc = _train("--help")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    for name in override_fields():
        assert re.search(rf"--(\[no\])?config\.{re.escape(name)}: ", out), name
    for name in options.all_options():
        assert re.search(rf"--(\[no\])?data\.{re.escape(name)}: ", out), name
    for name in LEGACY:  # deprecated names: --helpfull only
        assert not re.search(rf" --{name}: ", out), name
    for name, fields in PRESETS.items():  # each preset's changes, in --preset's help
        changed = {k: v for k, v in fields.items() if getattr(LandmarkConfig(), k) != v}
        want = ", ".join(f"{k}={changed[k]}" for k in override_fields() if k in changed)
        assert (f"{name}: {want}" if changed else f"{name}") in out, name
        assert changed or re.search(rf"\b{name}\b[\w, ]*: LandmarkConfig's defaults", out), name
    # the per-field default names the presets that change it
    assert re.search(r"--config\.image_size: [^-]*Default 128; preset synthetic 64, real_faces 32", out)


@pytest.mark.slow
def test_print_config_is_the_resolved_settings_and_config_json_stores_them(tmp_path):
    """--print_config with every field changed at once, then a 1-step run of the same flags:
    its config.json holds the same LandmarkConfig and source options."""
    small = {"image_size": 16, "heatmap_size": 8, "stem_stride": 1, "width": 4, "num_landmarks": 3,
             "batch_size": 2, "perceptual": "l2"}
    values = {**OTHER, **small}
    args = [f"--config.{k}={_text(v)}" for k, v in values.items()] + ["--data.mode=video", "--nodata.jit_compile"]
    # As landmarks-train runs, and then: was TensorFlow imported?
    code = ("import sys\nfrom keras_landmarks.cli import train\nsys.argv = sys.argv[1:]\ntry:\n    train.run()\n"
            "except SystemExit as done:\n    assert not done.code, done.code\nprint('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, TRAIN, "--dataset=synthetic", "--print_config", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"  # --print_config answers before TensorFlow starts
    printed = json.loads(proc.stdout[:proc.stdout.rindex("}") + 1])
    assert printed["preset"] == "synthetic" and printed["dataset"] == "synthetic"
    assert _leaves(LandmarkConfig.from_dict(printed["config"])) == values
    assert printed["data_kwargs"] == {"mode": "video", "jit_compile": False}

    logdir = tmp_path / "run"
    proc = _train("--dataset=synthetic", *args, "--steps=1", "--save_every=1", f"--logdir={logdir}",
                  "--verbose=0", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = json.loads((logdir / "config.json").read_text())
    assert stored["config"] == printed["config"]
    assert stored["run"]["data_kwargs"] == printed["data_kwargs"] and stored["run"]["dataset"] == "synthetic"


@pytest.mark.slow
def test_old_names_work_with_one_deprecation_line_each_and_errors_name_flags(tmp_path):
    proc = _train("--dataset=image_folder", f"--data_dir={tmp_path}", "--image_size=32", "--print_config")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)  # the deprecation lines are on stderr, not in the JSON
    assert printed["dataset"] == printed["preset"] == "folder" and printed["config"]["image_size"] == 32
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and all("deprecated" in line for line in lines), proc.stderr
    assert "'folder'" in proc.stderr and "--config.image_size" in proc.stderr
    for args, message in [(["--config.image_size=100"], "--config.image_size=100: image_size must be"),
                          (["--data.cache_dir=x"], "--data.cache_dir is an option of video"),
                          (["--config.normalization=layer"], "--config.normalization=layer: normalization must be")]:
        proc = _train("--dataset=synthetic", *args)
        assert proc.returncode == 2 and proc.stderr.startswith(f"train.py: error: {message}"), proc.stderr


# -- every flag a message names exists -----------------------------------------------------

# Flags of other programs that the library's text names on purpose, and absl's own (every CLI
# has them; absl handles --flagfile and --undefok before its registry).
EXTERNAL = {"model_base_path": "TF Serving", "relative": "First Order Motion Model's demo"}
ABSL = ("help", "helpshort", "helpfull", "helpxml", "flagfile", "undefok")
_MENTION = re.compile(r"(?<![\w-])--([a-z][\w.]*)(?:=([\w.<>{}/:~-]*))?")


def _cli_flags() -> dict[str, dict]:
    """``{flag: {"enum": values or None, "boolean": bool}}`` over every program of
    ``keras_landmarks/cli`` (one subprocess each: their absl flags share one registry)."""
    code = ("import importlib, json, sys\nfrom absl import flags\n"
            "m = importlib.import_module(sys.argv[1])\ngetattr(m, 'define_flags', lambda: None)()\n"
            "print(json.dumps({n: {'enum': getattr(flags.FLAGS[n].parser, 'enum_values', None),"
            " 'boolean': flags.FLAGS[n].boolean} for n in flags.FLAGS}))")
    found: dict[str, dict] = {}
    names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "keras_landmarks", "cli"))
                   if f.endswith(".py") and not f.startswith("_"))
    assert {"train", "evaluate", "diagnose", "predict", "export"} <= set(names)
    for name in names:
        proc = subprocess.run([sys.executable, "-c", code, f"keras_landmarks.cli.{name}"], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        for flag, info in json.loads(proc.stdout.splitlines()[-1]).items():
            seen = found.setdefault(flag, {"enum": [], "boolean": info["boolean"]})
            seen["enum"] = None if info["enum"] is None or seen["enum"] is None else seen["enum"] + info["enum"]
    return found


def _strings(tree) -> list[tuple[int, str]]:
    """Every string literal; an f-string with ``{}`` for its fields."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


@pytest.mark.slow
def test_every_flag_a_message_names_exists():
    known = _cli_flags()
    bad = []
    for folder, _, files in os.walk(os.path.join(ROOT, "keras_landmarks")):
        for file in (f for f in files if f.endswith(".py")):
            path = os.path.join(folder, file)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for line, text in _strings(tree):
                for match in _MENTION.finditer(text):
                    raw, value = match.group(1), match.group(2)
                    name = raw.rstrip(".")
                    if name in EXTERNAL or name in ABSL:
                        continue
                    if raw.endswith(".") and text[match.end():][:1] in ("<", "*"):  # --config.<field>
                        ok = any(k.startswith(raw) for k in known)
                    else:
                        flag = known.get(name) or (known.get(name[2:]) if name.startswith("no") else None)
                        ok = flag is not None and (flag is known.get(name) or flag["boolean"])
                        if ok and value and re.fullmatch(r"[a-z]\w*", value) and flag["enum"]:
                            ok = value in flag["enum"]  # --dataset=image_folder would be stale
                    if not ok:
                        bad.append(f"{os.path.relpath(path, ROOT)}:{line}: --{raw}{'=' + value if value else ''}")
    assert not bad, "messages name flags that no program has:\n" + "\n".join(bad)
