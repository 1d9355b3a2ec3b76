"""Every gallery example runs as a script, as sphinx-gallery runs it, and ends with a
figure: in a fresh process with an empty models folder, matplotlib's Agg backend and
plt.show() a no-op; the figures left open are drawn to PNG and must not be blank."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*/plot_*.py"))
#: Examples that read out the same quick expression networks (seeds 0-2, epochs 1, 3 and 5
#: kept): run in this order with one models folder, as a gallery build runs them, the first
#: trains them and the others load them (each also trains them itself on an empty folder).
SHARED = ["02_decoding/plot_identity_from_expression_net.py",
          "06_study/plot_reproduce_figure2.py", "06_study/plot_identity_during_training.py"]
ALONE = [p for p in EXAMPLES if f"{p.parent.name}/{p.name}" not in SHARED]

RUNNER = r"""
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
plt.show = lambda *args, **kwargs: None
runpy.run_path(sys.argv[1], run_name="__main__")
numbers = plt.get_fignums()
assert numbers, "the example leaves no figure"
for n in numbers:
    fig = plt.figure(n)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    assert pixels.std() > 0, f"figure {n} is blank"
print(f"FIGURES {len(numbers)}")
"""


def test_the_gallery_has_the_examples_the_docs_promise():
    assert len(EXAMPLES) >= 14, [p.name for p in EXAMPLES]
    for path in EXAMPLES:
        text = path.read_text()
        assert text.startswith('"""'), path
        title, underline = text.splitlines()[1:3]
        assert underline == "=" * len(title), f"{path}: RST title underline"
        assert "# %%" in text, path
        assert (path.parent / "README.txt").exists(), path.parent


def _run(path, home, cwd):
    env = dict(os.environ, DNNRSA_HOME=str(home), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("DNNRSA_DATA", None)
    done = subprocess.run([sys.executable, "-c", RUNNER, str(path)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, (path.name, done.stdout[-2000:], done.stderr[-4000:])
    assert "FIGURES" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("path", ALONE, ids=[f"{p.parent.name}/{p.name}" for p in ALONE])
def test_example_runs_and_ends_with_a_figure(path, tmp_path):
    _run(path, tmp_path / "home", tmp_path)


@pytest.mark.slow
def test_examples_that_share_networks_run_in_turn(tmp_path):
    root = Path(__file__).parents[1] / "examples"
    assert all((root / name).exists() for name in SHARED)
    for name in SHARED:
        _run(root / name, tmp_path / "home", tmp_path)
