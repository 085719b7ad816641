"""The package's layout promises (BUILD.md "Layout"): imports run down the layers of
``LAYERS`` (within a layer only along ``SAME_LAYER``'s edges, and no cycle among the modules),
BUILD.md's layout block names every module and only modules that exist, no module over ~300
lines, no function over ~60 lines of code without a stated reason, no ``sys.path`` edits, no
module named after a real package it would shadow, and ``import keras_landmarks`` or a CLI
module starts no TensorFlow."""

import ast
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_landmarks")
# The package's parts (its subpackages and top-level modules) in layers, bottom first. A part
# imports parts of lower layers; within a layer only along SAME_LAYER. The root __init__
# imports _internal only (everything else loads by name on first use).
LAYERS = (
    ("_internal",),  # plumbing: lazy attributes, logger, muted native logs, stale files, exit guard
    ("config", "geometry"),  # the frozen config and presets; the one coordinate convention
    ("networks", "losses", "pairs"),  # the figure's parts; training pairs by TPS warps
    ("data",),  # sources turned into pairs by pairs/
    ("model",),  # LandmarkModel: networks + loss
    ("training", "evaluation", "export", "pretrained"),  # what one does with a model
    ("apps", "pretraining"),  # applications on files; the colorization pre-training run
    ("cli",),  # flags -> the layers below
)
# The only edges inside a layer, each with its reason (together they make no cycle).
SAME_LAYER = {
    ("training", "evaluation"): "a run ends with the label-free diagnostics; its TensorBoard images are "
                                "evaluation's pictures",
    ("export", "pretrained"): "load_landmark_model takes a shipped detector's name as well as a file",
    ("pretrained", "evaluation"): "a shipped detector's named points come from the protocol's Regressor",
}
# Functions allowed past 60 lines of code, with the reason (BUILD.md "Layout").
LONG_FUNCTIONS = {"_render": "the toy-face painter: one straight sequence of layers drawn over each other"}
# Names of real packages a module must not take (the old export/onnx.py shadowed onnx).
SHADOWED = {"onnx", "tflite", "tensorflow", "keras", "cv2", "numpy", "tf2onnx", "onnxruntime", "absl"}


def _modules() -> dict[str, str]:
    mods = {}
    for path in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True):
        name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(path: str, mods: dict) -> set[str]:
    """keras_landmarks modules that ``path`` imports (module level or inside functions)."""
    def resolve(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_landmarks"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in mods else resolve(node.module))
        elif isinstance(node, ast.Import):
            found |= {resolve(a.name) for a in node.names if a.name.startswith("keras_landmarks")}
    return found


def _part(module: str) -> str:
    """``keras_landmarks.data.folders`` -> ``data``; the root package -> ``""``."""
    return module.split(".")[1] if "." in module else ""


def test_imports_run_down_the_layers():
    mods = _modules()
    layer = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    assert set(map(_part, mods)) - {""} == set(layer), "every part of the package has a layer"
    for (a, b), reason in SAME_LAYER.items():
        assert layer[a] == layer[b] and reason, (a, b)
    wrong, used = [], set()
    for m, path in mods.items():
        for d in _imports(path, mods):
            src, dst = _part(m), _part(d)
            if not d or src == dst:
                continue
            if src == "":
                ok = dst == "_internal"
            elif (src, dst) in SAME_LAYER:
                ok = True
                used.add((src, dst))
            else:
                ok = layer[dst] < layer[src]
            if not ok:
                wrong.append(f"{m} -> {d}")
    assert not wrong, "imports against the layers (tests/test_layout.py LAYERS):\n" + "\n".join(sorted(wrong))
    assert used == set(SAME_LAYER), f"SAME_LAYER edges no longer used: {set(SAME_LAYER) - used}"


def test_imports_have_no_cycle():
    mods = _modules()
    # Importing a submodule runs its packages' __init__ first: edges to ancestors are not cycles.
    graph = {m: {d for d in _imports(p, mods) if d and d != m and not m.startswith(d + ".")}
             for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m, trail):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, f"import cycle: {' -> '.join(trail + [m, d])}"
            if d not in state:
                visit(d, trail + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def _layout_block() -> list[tuple[str, str]]:
    """BUILD.md "Layout"'s tree: ``(entry, its text)``, entry a path from the root
    (``keras_landmarks/data/``, ``trainers/``); continuation lines join their entry's text."""
    section = open(os.path.join(ROOT, "BUILD.md")).read().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = next(b for b in re.findall(r"```[^\n]*\n(.*?)```", section, re.S) if "\nkeras_landmarks/" in b)
    block = block.splitlines()
    entries, prefix = [], ""
    for line in block:
        match = re.match(r"^ *(\S+)(?: {2,}(.*))?$", line)
        if line.startswith(" " * 20) or not match:  # a continuation of the entry above
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + line.strip())
            continue
        name, rest = match.group(1), match.group(2) or ""
        if not line.startswith(" "):
            prefix = name if name.endswith("/") and name.startswith("keras_landmarks") else ""
            entries.append((name, rest))
        else:
            entries.append((prefix + name, rest))
    return entries


def test_build_md_layout_names_every_module_and_only_real_ones():
    named = set()
    for entry, text in _layout_block():
        assert os.path.exists(os.path.join(ROOT, entry)), f"BUILD.md Layout names {entry}, which does not exist"
        if entry.startswith("keras_landmarks/") and entry.endswith("/"):
            for file in re.findall(r"(?<![\w./])(\w+\.py)\b", text):
                named.add(os.path.join(entry, file))
                assert os.path.isfile(os.path.join(ROOT, entry, file)), f"BUILD.md Layout: {entry}{file} does not exist"
        elif entry.endswith(".py"):
            named.add(entry)
    modules = {os.path.relpath(p, ROOT) for p in _modules().values()}
    missing = {m for m in modules if not m.endswith("__init__.py")} - named
    assert not missing, f"modules BUILD.md's Layout does not name: {sorted(missing)}"


def test_module_and_function_sizes():
    for name, path in _modules().items():
        source = open(path).read()
        assert source.count("\n") <= 310, f"{name}: {source.count(chr(10))} lines"
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1
            code_lines = node.end_lineno - (body[1] if has_doc else body[0]).lineno + 1
            assert code_lines <= 60 or node.name in LONG_FUNCTIONS, f"{name}.{node.name}: {code_lines} lines"


def test_no_sys_path_edits_and_no_shadowing_names():
    files = [f for d in ("keras_landmarks", "trainers", "bench", "tests")
             for f in glob.glob(os.path.join(ROOT, d, "**", "*.py"), recursive=True)]
    for path in files:
        if path == os.path.abspath(__file__):
            continue
        assert "sys.path" not in open(path).read(), path
    for name in _modules():
        assert name.rpartition(".")[2] not in SHADOWED, name


def test_importing_the_package_and_a_cli_starts_no_tensorflow():
    code = ("import sys, keras_landmarks, keras_landmarks.cli.train, keras_landmarks.cli.export, "
            "keras_landmarks.config; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
