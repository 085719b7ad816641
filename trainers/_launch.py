"""What every ``trainers/<name>.py`` does: run ``keras_landmarks.cli.<name>`` (the console
script ``landmarks-<name>``), or say how to install the package when it is missing.

Python puts a script's own folder first on its import path, so ``python trainers/<name>.py``
imports this module by its plain name; nothing edits the import path.
"""

import importlib


def launch(name: str) -> None:
    try:
        module = importlib.import_module(f"keras_landmarks.cli.{name}")
    except ModuleNotFoundError as err:  # not installed: say what to do instead of a traceback
        if err.name not in ("keras_landmarks", "keras_landmarks.cli", "absl"):
            raise
        raise SystemExit(f"trainers/{name}.py: error: {err.name} is not installed; run "
                         "'pip install -e .' in the repository (or 'make test', which does)") from None
    module.run()
