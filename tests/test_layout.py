"""The package's layout promises (BUILD.md "Layout"): imports run one way (no cycle among the
modules), no module over ~300 lines, no function over ~60 lines of code without a stated
reason, no ``sys.path`` edits, no module named after a real package it would shadow, and
``import keras_landmarks`` or a CLI module starts no TensorFlow."""

import ast
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_landmarks")
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
