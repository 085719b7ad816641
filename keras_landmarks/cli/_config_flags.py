"""Flags generated from the settings themselves, so every setting is reachable and none is
listed by hand: ``--config.<field>`` for every ``LandmarkConfig`` leaf
(``config.override_fields``; help from its ``Attributes:`` docstring) and ``--data.<option>``
for every training-source option (``data.options``; help from the loaders' ``Args:``).

Precedence: ``LandmarkConfig`` defaults < ``--preset`` (default: the ``--dataset``'s own) <
``--config.<field>``. ``--print_config`` shows the result. docs/configuration.md has the list.
Imports absl and the TensorFlow-free ``config`` and ``data`` modules only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import typing

from absl import flags

from keras_landmarks._internal.docstrings import doc_entries
from keras_landmarks.cli._flags import define_enum_with_aliases
from keras_landmarks.config import (PRESETS, LandmarkConfig, format_value, leaf_value, override_fields,
                                    parse_value, preset, with_overrides)
from keras_landmarks.data import LOADERS, resolve_pipeline, source_name
from keras_landmarks.data.options import all_options, source_options

CONFIG, DATA = "config.", "data."
# Deprecated aliases are attributed to this module name: listed by --helpfull, not --help.
DEPRECATED_MODULE = "keras_landmarks.cli.deprecated"
DEPRECATED: dict[str, str] = {}  # old flag name -> its new name, filled by define_config_flags
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", tuple: "a comma list of numbers"}

logger = logging.getLogger("keras_landmarks.cli")


class _LeafParser(flags.ArgumentParser):
    """``config.parse_value`` for one leaf type."""

    def __init__(self, tp: type):
        self.tp = tp

    def parse(self, argument):
        return parse_value(self.tp, argument) if isinstance(argument, str) else argument

    def flag_type(self) -> str:
        return _TYPE_NAMES[self.tp]


def _define(name: str, tp: type, help: str, flag_values, module_name=None) -> None:  # noqa: A002
    if tp is bool:
        flags.DEFINE_boolean(name, None, help, flag_values=flag_values, module_name=module_name)
    else:
        flags.DEFINE(_LeafParser(tp), name, None, help, flag_values=flag_values, module_name=module_name)


def field_help(name: str) -> str:
    """The docstring text of dotted leaf ``name`` of ``LandmarkConfig`` ("" if undocumented)."""
    cls, texts = LandmarkConfig, []
    for part in name.split("."):
        texts.append(doc_entries(cls.__doc__, "Attributes").get(part, "").rstrip("."))
        field_type = typing.get_type_hints(cls).get(part)
        cls = field_type if dataclasses.is_dataclass(field_type) else None
    return ": ".join(t for t in texts if t)


def preset_values(name: str) -> dict[str, object]:
    """``{preset: value}`` of dotted leaf ``name`` where a preset differs from the default."""
    default = leaf_value(LandmarkConfig(), name)
    values = {p: leaf_value(preset(p), name) for p in PRESETS}
    return {p: v for p, v in values.items() if v != default}


def presets_help() -> str:
    """What each preset changes, presets changing the same grouped: for ``--preset``'s help."""
    base, groups = LandmarkConfig(), {}
    for name in PRESETS:
        cfg = preset(name)
        diff = ", ".join(f"{k}={format_value(leaf_value(cfg, k))}" for k in override_fields()
                         if leaf_value(cfg, k) != leaf_value(base, k))
        groups.setdefault(diff or "LandmarkConfig's defaults (the paper's recipe)", []).append(name)
    return "; ".join(f"{', '.join(names)}: {diff}" for diff, names in groups.items())


def define_config_flags(legacy: tuple[str, ...] = (), flag_values=flags.FLAGS) -> None:
    """``--preset``, ``--print_config`` and ``--config.<leaf>`` for every ``LandmarkConfig``
    leaf; each name in ``legacy`` becomes a deprecated alias of ``--config.<name>``."""
    define_enum_with_aliases("preset", None, list(PRESETS), "Settings to start from; default: the "
                             f"--dataset's own. Presets: {presets_help()}. --config.<field> flags "
                             "override it; --print_config shows the result.", flag_values=flag_values)
    flags.DEFINE_bool("print_config", False, "Print the resolved settings (preset, --config.* "
                      "and --data.* applied) as JSON and exit, before anything is built.",
                      flag_values=flag_values)
    for name, tp in override_fields().items():
        text = field_help(name)
        by_preset = ", ".join(f"{p} {format_value(v)}" for p, v in preset_values(name).items())
        default = format_value(leaf_value(LandmarkConfig(), name))
        _define(CONFIG + name, tp, f"{text}. Default {default}" + (f"; preset {by_preset}" if by_preset else "")
                + ".", flag_values)
    for name in legacy:
        DEPRECATED[name] = CONFIG + name
        _define(name, override_fields()[name], f"Deprecated: use --{CONFIG}{name}.", flag_values,
                module_name=DEPRECATED_MODULE)


def define_data_flags(flag_values=flags.FLAGS) -> None:
    """``--data.<option>`` for every option of every training source's loader."""
    for name, options in all_options().items():
        if len({(o.type, o.path) for o in options}) > 1:
            raise TypeError(f"data option {name!r} has different types in {[o.loader for o in options]}")
        sources = ", ".join(_label(o.loader) for o in options)
        _define(DATA + name, options[0].type, f"{sources}: {options[0].help.rstrip('.')}. Default "
                f"{options[0].default}.", flag_values)


def _label(loader: str) -> str:
    (source, pipeline), = [k for k, v in LOADERS.items() if ".".join(v) == loader]
    return source if pipeline == "tf_data" else f"{source} with --pipeline={pipeline}"


def given_overrides(flag_values=flags.FLAGS) -> dict[str, tuple[object, str]]:
    """``{leaf: (value, "--<flag>=<value>")}`` of the ``--config.*`` flags (and deprecated
    aliases) given; ``ValueError`` when a leaf is given under both names."""
    given = {}
    for name in override_fields():
        for flag in [CONFIG + name] + [old for old, new in DEPRECATED.items() if new == CONFIG + name]:
            if flag in flag_values and flag_values[flag].present:
                if name in given:
                    raise ValueError(f"{given[name][1]} and --{flag}: the same setting twice "
                                     f"(--{flag} is a deprecated name); give --{CONFIG}{name} once")
                value = flag_values[flag].value
                given[name] = (value, f"--{flag}={format_value(value)}")
    return given


def deprecation_lines(flag_values=flags.FLAGS) -> list[str]:
    """One line per deprecated flag given."""
    return [f"--{old} is deprecated: use --{new} (the same setting)" for old, new in DEPRECATED.items()
            if old in flag_values and flag_values[old].present]


def resolve_config(dataset: str, flag_values=flags.FLAGS) -> LandmarkConfig:
    """The ``LandmarkConfig``: ``--preset`` (or the ``dataset``'s) with the ``--config.*`` flags
    applied. ``ValueError`` naming the flags that make it invalid."""
    name = flag_values["preset"].value or dataset
    given = given_overrides(flag_values)
    values = {k: v for k, (v, _) in given.items()}
    if str(values.get("perceptual", "")).startswith("vgg19:"):
        path = os.path.expanduser(values["perceptual"][len("vgg19:"):])
        if not os.path.isfile(path):
            raise ValueError(f"{given['perceptual'][1]}: no such weights file {path!r}")
        values["perceptual"] = "vgg19:" + path
    try:
        return with_overrides(preset(name), values)
    except ValueError as err:
        named = [flag for leaf, (_, flag) in given.items()
                 if re.search(rf"\b{re.escape(leaf.split('.')[0])}\b", str(err))]
        raise ValueError(f"{', '.join(named) or f'--preset={name}'}: {err}") from None


def data_options(dataset: str, pipeline: str, flag_values=flags.FLAGS) -> dict[str, object]:
    """The ``--data.*`` options given, checked against the source (and its pipeline's loader);
    ``~`` expanded in paths. ``ValueError`` naming the flag the source does not take."""
    given = {name: flag_values[DATA + name].value for name in all_options() if flag_values[DATA + name].present}
    dataset = source_name(dataset, warn=False)
    try:
        pipe = resolve_pipeline(pipeline, dataset)
    except ValueError:  # reported with its own message when the pairs are built
        pipe = None
    takes = source_options(dataset, pipe)
    for name, value in given.items():
        if name not in takes:
            where = ", ".join(_label(o.loader) for o in all_options()[name])
            offered = ", ".join(f"--{DATA}{k}" for k in takes) or "none"
            raise ValueError(f"--{DATA}{name} is an option of {where}, not of --dataset={dataset}"
                             + (f" with --pipeline={pipe}" if pipe and pipe != "tf_data" else "")
                             + f" (it takes: {offered})")
        if takes[name].path:
            given[name] = os.path.expanduser(value)
    return given


def markdown_tables() -> str:
    """The generated flags as the Markdown tables of docs/configuration.md
    (``python -m keras_landmarks.cli._config_flags`` prints them)."""
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    rows = ["| flag | type | default | presets that change it | meaning |", "|---|---|---|---|---|"]
    for name, tp in override_fields().items():
        by_preset = ", ".join(f"{p}: `{format_value(v)}`" for p, v in preset_values(name).items())
        rows.append(f"| `--{CONFIG}{name}` | {'bool' if tp is bool else _TYPE_NAMES[tp]} | "
                    f"`{format_value(leaf_value(LandmarkConfig(), name))}` | {cell(by_preset)} | "
                    f"{cell(field_help(name))} |")
    rows += ["", "| flag | source | type | default | meaning |", "|---|---|---|---|---|"]
    for name, options in all_options().items():
        o = options[0]
        rows.append(f"| `--{DATA}{name}` | {', '.join(_label(x.loader) for x in options)} | "
                    f"{'bool' if o.type is bool else _TYPE_NAMES[o.type]}{' (path)' if o.path else ''} | "
                    f"`{o.default}` | {cell(o.help)} |")
    return "\n".join(rows)


__all__ = ["CONFIG", "DATA", "DEPRECATED", "data_options", "define_config_flags", "define_data_flags",
           "deprecation_lines", "field_help", "given_overrides", "markdown_tables", "resolve_config"]

if __name__ == "__main__":
    print(markdown_tables())
