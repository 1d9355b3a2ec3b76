import subprocess
import sys

import pytest

from dnnrsa import zoo
from dnnrsa.cli import main


def test_train_untrained_writes_a_loadable_checkpoint(home, capsys):
    assert main(["train", "untrained", "--seed", "2", "3", "--quick"]) == 0
    out = capsys.readouterr().out
    for seed in (2, 3):
        path = zoo.checkpoint_path("untrained", seed, quick=True)
        assert str(path) in out
        assert zoo.load(path).dnnrsa_info["seed"] == seed


def test_train_full_after_quick_trains_the_full_network(home, capsys):
    """`dnnrsa train X` after `dnnrsa train X --quick` used to say "already trained"."""
    assert main(["train", "untrained", "--quick"]) == 0
    assert main(["train", "untrained"]) == 0
    out = capsys.readouterr().out
    assert str(zoo.checkpoint_path("untrained", 0, quick=True)) in out
    assert str(zoo.checkpoint_path("untrained", 0)) in out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "quick-init-" in listing and "full-init-" in listing


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "expresion"], "Unknown value 'expresion' for argument variant"),
        (["train", "expression", "--data", "kaggle"], "Unknown value 'kaggle' for argument data"),
        (["decode", "untrained", "dense4", "--quick", "--target", "identity", "--epochs", "1"],
         "Unknown value 'dense4' for argument layers"),
        (["reproduce", "--out", "x", "--networks", "alexnet"], "argument networks"),
        (["data", "check", "kdef", "/nonexistent/kdef"], "kdef"),
        (["decode", "untrained", "dense3", "--target", "identity", "--epochs", "-3"],
         "epochs must be an integer >= 1, got -3"),
        (["decode", "untrained", "dense3", "--target", "identity", "--permutations", "-5"],
         "n_permutations must be an integer >= 0, got -5"),
        (["reproduce", "--out", "x", "--readout-epochs", "0"],
         "epochs must be an integer >= 1, got 0"),
        (["train", "expression", "--seed", str(2**64)], "seed must be an integer between 0"),
        (["train", "expression", "--seed", "1", "1"], "Argument seed lists a seed twice"),
        (["train", "untrained", "--epochs", "5"], "does not apply to the untrained variant"),
        (["train", "expression", "--quick", "--epochs", "2", "--keep-epochs", "5"],
         "keep_epochs"),
        (["train", "expression", "--quick", "--state-every", "0"], "state_every must be"),
        (["train", "untrained", "--quick", "--keep-epochs", "1"],
         "does not apply to the untrained variant"),
        (["reproduce", "--out", "x", "--quick", "--at-epochs", "20"],
         "at_epochs must hold epoch numbers in 1..10"),
        (["reproduce", "--out", "x", "--quick", "--scheduler", "http://nowhere"],
         "scheduler"),
        (["reproduce", "--out", "x", "--quick", "--scheduler", "/nonexistent/sched.json"],
         "sched.json"),
    ],
)
def test_errors_are_one_line_with_exit_2(home, argv, match, capsys):
    if argv[0] == "decode":
        main(["train", "untrained", "--quick"])
        capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert match in text
    assert "Traceback" not in text


def test_train_keeps_epochs_and_resumes(home, capsys):
    """--keep-epochs saves the network after epoch 1 beside the final one; --resume on a
    finished seed trains nothing and leaves no state behind."""
    argv = ["train", "expression", "--quick", "--epochs", "2", "--keep-epochs", "1",
            "--device", "cpu"]
    assert main(argv) == 0
    final = zoo.checkpoint_path("expression", 0, quick=True, epochs=2)
    stamp = final.stat().st_mtime_ns
    first = zoo.load_model("expression", seed=0, quick=True, epochs=2, epoch=1, device="cpu")
    assert first.dnnrsa_info["epoch"] == 1
    assert zoo.load(final).dnnrsa_info["epoch"] == 2
    assert main([*argv, "--resume"]) == 0
    assert final.stat().st_mtime_ns == stamp
    assert not list(final.parent.glob("*.state.pt"))


def test_no_traceback_from_the_installed_command(home):
    proc = subprocess.run([sys.executable, "-m", "dnnrsa.cli", "train", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Valid values are" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dnnrsa.cli", "train"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
