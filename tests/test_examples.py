"""Every gallery example runs as a script, as sphinx-gallery runs it, and ends with a
figure: in a fresh process with an empty models folder, matplotlib's Agg backend and
plt.show() a no-op; the figures left open are drawn to PNG and must not be blank."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*/plot_*.py"))

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


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in EXAMPLES])
def test_example_runs_and_ends_with_a_figure(path, tmp_path):
    env = dict(os.environ, DNNRSA_HOME=str(tmp_path / "home"), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1")
    env.pop("DNNRSA_DATA", None)
    done = subprocess.run([sys.executable, "-c", RUNNER, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    assert "FIGURES" in done.stdout
