"""The README and docs/ keep working: the README's quick start runs, every command uses flags
its program defines, every relative link points to an existing file and heading.

The quick start is the first ```bash block after the ``<!-- quickstart:`` marker in README.md.
``test_readme_quick_start_runs_on_generated_data`` runs each of its lines as written, in a
folder holding generated ``my_faces/`` and ``my_labelled_faces/``, with only the flags of
``TINY`` appended (absl keeps the last value of a repeated flag), so a run takes seconds and
any other edit to a line (a renamed flag, a wrong path, a step that no longer follows from the
one before) fails the test.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "BUILD.md", *DOCS]

# Appended to the README's quick-start lines (and nothing else changed): tiny sizes and step
# counts for generated data. A program missing here runs with the README's flags alone.
TINY = {
    "landmarks-train": ["--steps=2", "--save_every=2", "--config.width=4", "--config.num_landmarks=4",
                        "--config.batch_size=4", "--verbose=0"],
    "landmarks-diagnose": ["--num_images=4"],
    "landmarks-export": ["--calibration_images=4", "--parity_images=4"],
}
QUICK_START_PROGRAMS = ["landmarks-train", "landmarks-diagnose", "landmarks-evaluate", "landmarks-export",
                        "landmarks-predict"]

# Pages that record commands as they were run (the experiment log, the measured tables): there
# a deprecated spelling is history, not advice. Everywhere else it is an error.
RECORDS = {"docs/experiments.md", "docs/benchmarks.md"}

# Links to pages being written alongside a feature: allowed while the file does not exist yet,
# checked like any other link once it does.
PENDING: set[str] = set()

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```(\w*)\s*$")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``[(language, body)]`` of every fenced code block."""
    blocks, lang, body = [], None, []
    for line in text.splitlines():
        match = _FENCE.match(line.strip())
        if match and lang is None:
            lang, body = match.group(1), []
        elif line.strip() == "```" and lang is not None:
            blocks.append((lang, "\n".join(body)))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def _command_lines(block: str) -> list[str]:
    """Logical lines of a shell block: continuations joined, comments and blanks dropped."""
    lines = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def readme_quick_start() -> list[str]:
    text = README.read_text()
    start = text.index("<!-- quickstart:")
    lang, block = _fenced_blocks(text[start:])[0]
    assert lang == "bash"
    return _command_lines(block)


def _program(command: str) -> list[str]:
    """How to start a console script: this environment's own, else its ``trainers/`` script."""
    script = Path(sys.executable).parent / command
    if script.is_file():
        return [str(script)]
    return [sys.executable, str(ROOT / "trainers" / (command.removeprefix("landmarks-").replace("-", "_") + ".py"))]


def _write_images(folder: Path, images, landmarks, split_of, rows) -> None:
    import cv2
    import numpy as np

    for i, (image, points) in enumerate(zip(np.asarray(images), np.asarray(landmarks))):
        name = f"{split_of(i)}_{i:03d}.png"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        if rows is not None:
            rows.append([name, split_of(i)] + [f"{v:.3f}" for v in points.reshape(-1)])


def _generated_folders(root: Path) -> None:
    """``my_faces/``: 12 unlabelled toy faces at its top level and 4 in a subfolder;
    ``my_labelled_faces/``: 24 train and 8 test toy faces with their 5 points in ``landmarks.csv``."""
    from keras_landmarks import data

    def faces(split, n, seed):
        batch = next(iter(data.annotated("synthetic", split=split, image_size=48, batch_size=n,
                                         num_images=n, seed=seed)))
        return batch["image"], batch["landmarks"]

    images, points = faces("train", 16, 1)
    _write_images(root / "my_faces", images[:12], points[:12], lambda i: "face", None)
    _write_images(root / "my_faces" / "more", images[12:], points[12:], lambda i: "face", None)
    rows = []
    for split, n in (("train", 24), ("test", 8)):
        images, points = faces(split, n, 2)
        _write_images(root / "my_labelled_faces", images, points, lambda i, s=split: s, rows)
    header = ["file", "split"] + [f"{p}_{a}" for p in ("le", "re", "n", "lm", "rm") for a in "xy"]
    with open(root / "my_labelled_faces" / "landmarks.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def test_readme_quick_start_is_the_five_steps_in_order():
    programs = [shlex.split(line)[0] for line in readme_quick_start()]
    assert programs == QUICK_START_PROGRAMS


@pytest.mark.slow
def test_readme_quick_start_runs_on_generated_data(tmp_path):
    _generated_folders(tmp_path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    for line in readme_quick_start():
        argv = shlex.split(line)
        cmd = _program(argv[0]) + argv[1:] + TINY.get(argv[0], [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    run = tmp_path / "runs" / "my_faces"
    assert (run / "model.keras").is_file()
    assert (run / "eval" / "metrics.json").is_file()
    assert {"detector_float32.tflite", "detector_int8.tflite", "detector.onnx", "export.json"} <= {
        p.name for p in (run / "export").iterdir()}
    predictions = run / "predictions"
    assert (predictions / "keypoints.csv").is_file()
    assert len(list(predictions.glob("*.png"))) == 12  # the folder's top-level images


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[`*]|\[|\]\([^)]*\)", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    outside = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # "# comments" are no headings
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", outside, flags=re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)                           # nor do code spans
    return [m.group(1) for m in _LINK.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):  # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        relative = os.path.relpath(target, ROOT)
        if not target.exists():
            if relative not in PENDING:
                broken.append(f"{link}: no {relative}")
            continue
        if anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {relative}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def _defined_flags(program: str) -> tuple[set[str], set[str]]:
    """``(current, deprecated)`` flag names of a console script, from its ``--helpfull``."""
    proc = subprocess.run([*_program(program), "--helpfull"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    current, deprecated = set(), set()
    for name, text in re.findall(r"^\s+--(?:\[no\])?([\w.]+): (.*)$", proc.stdout, flags=re.M):
        (deprecated if text.startswith("Deprecated") else current).add(name)
    return current, deprecated - current


def _bench_flags(script: Path) -> set[str]:
    """The flags ``bench/<script>.py --help`` lists (argparse; some are generated from the config)."""
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, f"{script.name} --help: {proc.stderr[-2000:]}"
    return set(re.findall(r"(?<![\w-])--(\w+)", proc.stdout))


def _commands(page: Path):
    """``(program, [(flag name, value)])`` of each ``landmarks-*``, ``trainers/*.py`` and
    ``bench/*.py`` call in the page's bash blocks."""
    for lang, block in _fenced_blocks(page.read_text()):
        if lang != "bash":
            continue
        for line in _command_lines(block):
            tokens = shlex.split(line, comments=True)
            for i, token in enumerate(tokens):
                name = os.path.basename(token)
                if name.startswith("landmarks-"):
                    program = name
                elif token.startswith(("trainers/", "bench/")) and token.endswith(".py"):
                    program = token if token.startswith("bench/") else "landmarks-" + name[:-3].replace("_", "-")
                else:
                    continue
                args = []
                for arg in tokens[i + 1:]:
                    if arg in ("|", "&&", ";", "||"):
                        break
                    if arg.startswith("--"):
                        flag, _, value = arg[2:].partition("=")
                        args.append((flag, value))
                yield program, args
                break


def _unknown_flags(programs) -> list[str]:
    """``page: program --flag`` for each flag of a README / docs command its program lacks, or
    spells the deprecated way (outside ``RECORDS``): a flag or a ``--dataset`` name."""
    from keras_landmarks.data import DEPRECATED_SOURCES

    known: dict[str, tuple[set[str], set[str]]] = {}
    unknown = []
    for page in PAGES:
        where = str(page.relative_to(ROOT))
        for program, args in _commands(page):
            if not programs(program):
                continue
            if program not in known:
                script = ROOT / program
                known[program] = (_bench_flags(script), set()) if program.startswith("bench/") else _defined_flags(program)
            current, deprecated = known[program]
            for flag, value in args:
                name = flag[2:] if flag.startswith("no") and flag not in current | deprecated else flag
                if name in deprecated and where not in RECORDS:
                    unknown.append(f"{where}: {program} --{flag} (deprecated)")
                elif name not in current | deprecated:
                    unknown.append(f"{where}: {program} --{flag}")
                if flag == "dataset" and value in DEPRECATED_SOURCES and where not in RECORDS:
                    unknown.append(f"{where}: {program} --dataset={value} (deprecated)")
    return sorted(set(unknown))


def test_every_command_in_readme_and_docs_uses_flags_its_program_defines():
    """The console scripts (``landmarks-*``, ``trainers/*.py``): ``--helpfull`` answers in ~0.1 s."""
    missing = [f"{page.name}: {program}" for page in PAGES for program, _ in _commands(page)
               if program.startswith("bench/") and not (ROOT / program).is_file()]
    assert not missing, "no such script: " + "; ".join(missing)
    unknown = _unknown_flags(lambda program: not program.startswith("bench/"))
    assert not unknown, "flags no program defines: " + "; ".join(unknown)


@pytest.mark.slow
def test_every_bench_command_in_readme_and_docs_uses_flags_its_script_defines():
    """``bench/*.py`` scripts import Keras before parsing their flags: seconds each."""
    unknown = _unknown_flags(lambda program: program.startswith("bench/"))
    assert not unknown, "flags no script defines: " + "; ".join(unknown)
