"""notebooks/quickstart.ipynb runs headless, end to end, with a tiny budget.

The notebook is executed the way papermill does it: a cell tagged ``injected-parameters``
overriding the ``parameters`` cell's values is inserted right after it, then every cell
runs in a fresh ipykernel (``nbclient``) started in ``notebooks/``, as local Jupyter
would. The kernel is this interpreter (a kernelspec written for ``sys.executable``), so
it sees the same packages as the test. Nothing is downloaded: toy faces are generated,
the loss is pixel L2, and Colab's clone/install branch is skipped outside Colab.
"""

import ast
import json
import math
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
FLOAT = r"([-+0-9.eE]+|nan|inf)"


def tiny_budget(logdir: str) -> dict:
    # 32 px (the smallest size for the 16x16 heatmaps), 30 steps in two saves. The toy-face
    # renderer is XLA-compiled once per batch shape (~5-20 s each), so the annotated sets
    # reuse two: 32 faces (>= the 2K = 20 regression unknowns of K = 10; also export's 32
    # parity images) and 8 (the test split, also the notebook's 8 faces for TFLite).
    return {"STEPS": 30, "BATCH_SIZE": 8, "IMAGE_SIZE": 32, "SAVE_EVERY": 15, "NUM_LANDMARKS": 10,
            "NUM_TRAIN_FACES": 32, "NUM_TEST_FACES": 8, "LOGDIR": logdir,
            "EXPORT_FORMATS": ["tflite"]}


def parameters_cell(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def assigned_names(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def inject_parameters(nb, values: dict) -> None:
    """papermill's convention: a cell tagged ``injected-parameters`` after ``parameters``."""
    index = parameters_cell(nb)
    unknown = set(values) - assigned_names(nb.cells[index].source)
    assert not unknown, f"not parameters of the notebook: {sorted(unknown)}"
    cell = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in values.items()),
        metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


def kernel_manager(spec_root: str):
    """A KernelManager whose ``python3`` kernel is this interpreter (not a user-level spec)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    write_kernel_spec(os.path.join(spec_root, "python3"))  # argv[0] = sys.executable
    specs = KernelSpecManager(kernel_dirs=[spec_root], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_committed_notebook_is_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    parameters_cell(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"stored outputs in cell {cell.id}: clear them before committing")


def run_notebook(budget: dict, kernels_dir: str):
    """The notebook with ``budget`` injected, plus a simulated runtime reset at the end (a
    fresh model in the same run folder, 10 more steps), executed; returns it with outputs."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    inject_parameters(nb, budget)
    train = [c for c in nb.cells if c.cell_type == "code" and "model.fit(" in c.source]
    assert len(train) == 1
    nb.cells += [nbformat.v4.new_code_cell(f"STEPS = {budget['STEPS'] + 10}"),
                 nbformat.v4.new_code_cell(train[0].source)]
    client = nbclient.NotebookClient(
        nb, km=kernel_manager(kernels_dir), timeout=300, startup_timeout=120,
        resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}})
    client.execute()  # raises CellExecutionError (with the cell's traceback) on any error
    return nb


def test_notebook_runs_headless_with_a_tiny_budget(tmp_path):
    logdir = str(tmp_path / "run")
    budget = tiny_budget(logdir)
    nb = run_notebook(budget, str(tmp_path / "kernels"))

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a code cell did not run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    out = "\n".join(text_of(c) for c in code)
    # The kernel imports the package installed from this checkout (editable), and the local
    # branch puts runs under the repository root.
    package = re.search(r"^keras-landmarks \S+ from (.+)$", out, re.M)
    assert package and os.path.realpath(package.group(1)) == os.path.realpath(os.path.join(ROOT, "keras_landmarks"))
    runs = re.search(r"^runs under: (.+)$", out, re.M)
    assert runs and os.path.realpath(runs.group(1)) == os.path.realpath(ROOT)

    # Training went through fit + the library's callbacks to STEPS and saved the model.
    assert re.search(rf"step {budget['STEPS']}/{budget['STEPS']} ", out), out[-3000:]
    assert "new run" in out
    assert os.path.isfile(os.path.join(logdir, "model.keras"))

    resumed = text_of(code[-1])
    assert f"resuming at step {budget['STEPS']}" in resumed, resumed
    assert re.search(rf"step {budget['STEPS'] + 10}/{budget['STEPS'] + 10} ", resumed), resumed

    # Evaluation: finite numbers, printed from the report the library wrote.
    match = re.search(rf"landmark error: {FLOAT} % of the inter-ocular distance "
                      rf"\(mean-shape baseline: {FLOAT} %\)", out)
    assert match, out[-3000:]
    error, baseline = float(match.group(1)), float(match.group(2))
    assert math.isfinite(error) and math.isfinite(baseline) and error > 0 and baseline > 0
    with open(os.path.join(logdir, "evaluation", "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["num_test"] == budget["NUM_TEST_FACES"]
    assert error == pytest.approx(metrics["error_percent"], abs=0.006)
    assert baseline == pytest.approx(metrics["baseline_error_percent"], abs=0.006)
    pngs = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert pngs == 3, "expected landmarks.png, detections.png and tflite_vs_keras.png shown"

    # TFLite: the file exists and LiteRT's points match Keras (float32 parity: 1e-3 px).
    assert os.path.isfile(os.path.join(logdir, "export", "detector_float32.tflite"))
    match = re.search(rf"TFLite vs Keras on (\d+) held-out faces: max difference {FLOAT} px", out)
    assert match, out[-3000:]
    assert int(match.group(1)) == 8
    assert float(match.group(2)) < 1e-3
