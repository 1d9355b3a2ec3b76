"""The bad-input battery: every mistake a user can make fails fast, with the argument (or
file), what it got and what it accepts, before any work and without leaving files behind;
on the command line as one line on stderr with exit status 2."""

import errno
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from torch import nn

import dnnrsa
from dnnrsa import Activations, StimulusSet, datasets, neural, zoo
from dnnrsa._utils import check_output_path
from dnnrsa.cli import main
from dnnrsa.decoding import decode_grid
from dnnrsa.study import _resolve

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def meta():
    rows = [dict(identity=f"F0{i}", expression=e, viewpoint=v)
            for i in range(1, 5) for e in ("HA", "SA") for v in ("HL", "S", "HR")]
    return pd.DataFrame(rows)


@pytest.fixture
def acts(rng, meta):
    return Activations(rng.random((len(meta), 10)), meta)


@pytest.fixture
def net():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def _boom(*args, **kwargs):
    raise AssertionError("work started before the bad input was refused")


# ------------------------------------------------------------------ check_output_path


def test_output_path_accepts_new_and_existing_folders_and_creates_nothing(tmp_path):
    new = tmp_path / "a" / "b"
    assert check_output_path("out", new) == new
    assert check_output_path("out", tmp_path) == tmp_path
    csv = tmp_path / "x" / "r.csv"
    assert check_output_path("csv", csv, kind="file") == csv
    assert _files(tmp_path) == set()  # not even the write test's temporary file


@pytest.mark.parametrize("make, kind, match", [
    (lambda t: (t / "f").write_text("x") and t / "f", "folder", "is a file, not a folder"),
    (lambda t: t, "file", "is a folder, not a file: give a file name"),
    (lambda t: (t / "f").write_text("x") and t / "f" / "sub" / "o", "folder",
     "cannot be created: .* is a file, not a folder"),
    (lambda t: (t / "f").write_text("x") and t / "f" / "r.csv", "file",
     "cannot be created: .* is a file, not a folder"),
])
def test_output_path_refuses(tmp_path, make, kind, match):
    path = make(tmp_path)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=f"Argument out='{tmp_path}.*' {match}"):
        check_output_path("out", path, kind=kind)
    assert _files(tmp_path) == before


def test_output_path_refuses_an_unwritable_location(tmp_path, monkeypatch):
    # Root can write anywhere, so the refusal of the folder is simulated where it is tested.
    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(ValueError, match=r"out='.*/new' is not writable: cannot create files "
                       r"under '.*' \(Permission denied\)\. Give a folder in a folder you"):
        check_output_path("out", tmp_path / "new")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_output_path_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            check_output_path("out", ro / "x")
    finally:
        ro.chmod(0o700)


def test_output_path_bad_types():
    with pytest.raises(TypeError, match="Argument out must be a path .* got int"):
        check_output_path("out", 3)
    with pytest.raises(ValueError, match="Argument out is an empty path"):
        check_output_path("out", "")
    with pytest.raises(ValueError, match="Unknown value 'dir' for argument kind"):
        check_output_path("out", "x", kind="dir")


# ------------------------------------------------------------------- the Python API

API_CASES = {
    # StimulusSet and Activations
    "images_1d": (lambda m, a, n: StimulusSet(np.zeros(24), m), ValueError,
                  "Argument images must have shape \\(n_images, n_channels"),
    "images_rows": (lambda m, a, n: StimulusSet(np.zeros((23, 1, 8, 8)), m), ValueError,
                    "23 images but metadata has 24 rows"),
    "stim_metadata": (lambda m, a, n: StimulusSet(np.zeros((24, 1, 8, 8)), {"a": 1}), TypeError,
                      "Argument metadata must be a pandas DataFrame, got dict"),
    "acts_rows": (lambda m, a, n: Activations(np.zeros((23, 3)), m), ValueError,
                  "23 observations but metadata has 24 rows"),
    "acts_metadata": (lambda m, a, n: Activations(np.zeros((24, 3)), "x"), TypeError,
                      "Argument metadata must be a pandas DataFrame, got str"),
    "acts_factor": (lambda m, a, n: a.check_factor("identiy"), ValueError,
                    "Unknown value 'identiy' .* Valid values are \\{identity, expression"),
    # synthetic faces
    "synth_n": (lambda m, a, n: datasets.synthetic_faces(n_identities=0), ValueError,
                "Argument n_identities must be an integer >= 1, got 0"),
    "synth_expr": (lambda m, a, n: datasets.synthetic_faces(expressions=("XX",)), ValueError,
                   "'XX'.* argument expressions. Valid values are \\{AF, AN"),
    "synth_view": (lambda m, a, n: datasets.synthetic_faces(viewpoints=("UP",)), ValueError,
                   "'UP'.* argument viewpoints. Valid values are \\{FL, HL, S, HR, FR\\}"),
    "synth_size": (lambda m, a, n: datasets.synthetic_faces(size=4), ValueError,
                   "Argument size must be an integer >= 16, got 4"),
    "synth_seed": (lambda m, a, n: datasets.synthetic_faces(seed=-1), ValueError,
                   "Argument seed must be a non-negative integer, got -1"),
    # extract
    "extract_layer": (lambda m, a, n: dnnrsa.extract(n, _stim(m), ["nope"]), ValueError,
                      "Unknown value 'nope' for argument layers. Valid values are \\{pixels, 0"),
    "extract_empty": (lambda m, a, n: dnnrsa.extract(n, _stim(m), []), ValueError,
                      "Argument layers is empty"),
    "extract_batch": (lambda m, a, n: dnnrsa.extract(n, _stim(m), ["0"], batch_size=0),
                      ValueError, "Argument batch_size must be an integer >= 1, got 0"),
    "extract_stimuli": (lambda m, a, n: dnnrsa.extract(n, np.zeros((2, 1, 8, 8)), ["0"]),
                        TypeError, "Argument stimuli must be a dnnrsa.StimulusSet, got ndarray"),
    "extract_dtype": (lambda m, a, n: dnnrsa.extract(n, _stim(m), ["0"], dtype="int8"),
                      ValueError, "Unknown value 'int8' for argument dtype. Valid values"),
    "extract_device": (lambda m, a, n: dnnrsa.extract(n, _stim(m), ["0"], device="tpu"),
                       ValueError, "Unknown value 'tpu' for argument device. Valid values"),
    # rdm, compare, compare_to_brain
    "rdm_method": (lambda m, a, n: dnnrsa.rdm(a, method="cosin"), ValueError,
                   "Unknown value 'cosin' for argument method. Valid values are \\{euclidean"),
    "rdm_conditions": (lambda m, a, n: dnnrsa.rdm(a, conditions="identiy"), ValueError,
                       "Unknown value 'identiy' for argument conditions"),
    "rdm_type": (lambda m, a, n: dnnrsa.rdm(np.zeros((3, 3))), TypeError,
                 "Argument acts must be a dnnrsa.Activations or an rsatoolbox"),
    "compare_method": (lambda m, a, n: dnnrsa.compare(dnnrsa.rdm(a), dnnrsa.rdm(a),
                                                      method="pearsn"), ValueError,
                       "Unknown value 'pearsn' for argument method. Valid values are"),
    "compare_sizes": (lambda m, a, n: dnnrsa.compare(np.zeros(3), dnnrsa.rdm(a)), ValueError,
                      "rdms_a and rdms_b must be RDMs of the same size"),
    "ctb_conditions": (lambda m, a, n: dnnrsa.compare_to_brain(a, a, conditions="identiy"),
                       ValueError, "Unknown value 'identiy' for argument conditions"),
    "ctb_n_boot": (lambda m, a, n: dnnrsa.compare_to_brain(a, a, conditions="identity",
                                                           n_boot=-1), ValueError,
                   "Argument n_boot must be an integer >= 2, got -1"),
    "ctb_ci": (lambda m, a, n: dnnrsa.compare_to_brain(a, a, conditions="identity", ci=1.5),
               ValueError, "Argument ci must be a number in \\(0, 1\\)"),
    # decode_grid
    "grid_target": (lambda m, a, n: decode_grid(a, targets="identiy", readout="linear"),
                    ValueError, "Unknown value 'identiy' for argument target"),
    "grid_cv": (lambda m, a, n: decode_grid(a, targets="identity", cv="viewpont",
                                            readout="linear"), ValueError,
                "Unknown value 'viewpont' for argument cv"),
    "grid_cv_int": (lambda m, a, n: decode_grid(a, targets="identity", cv=1, readout="linear"),
                    ValueError, "Argument cv as an int must be >= 2 folds, got 1"),
    "grid_readout": (lambda m, a, n: decode_grid(a, targets="identity", readout="svm"),
                     ValueError, "Unknown value 'svm' for argument readout"),
    "grid_epochs": (lambda m, a, n: decode_grid(a, targets="identity", epochs=0), ValueError,
                    "Argument epochs must be an integer >= 1, got 0"),
    "grid_seeds": (lambda m, a, n: decode_grid(a, targets="identity", seeds=[1, 1]),
                   ValueError, "Argument seeds has 2 entries but acts has 1"),
    "grid_lr": (lambda m, a, n: decode_grid(a, targets="identity", lr=0), ValueError,
                "Argument lr must be a finite number > 0, got 0.0"),
    # decode
    "decode_model": (lambda m, a, n: dnnrsa.decode("alexnet", "dense3", target="identity"),
                     ValueError, "Unknown value 'alexnet' for argument model"),
    "decode_model_type": (lambda m, a, n: dnnrsa.decode(3, "dense3", target="identity"),
                          TypeError, "Argument model must be a torch.nn.Module.* got int"),
    "decode_no_layer": (lambda m, a, n: dnnrsa.decode(n, target="identity", stimuli=_stim(m)),
                        ValueError, "Argument layer is required when model is a network"),
    "decode_stimuli": (lambda m, a, n: dnnrsa.decode(n, "0", target="identity",
                                                     stimuli="celeba"), ValueError,
                       "Unknown value 'celeba' for argument stimuli"),
    "decode_perm": (lambda m, a, n: dnnrsa.decode(n, "0", target="identity",
                                                  n_permutations=-5), ValueError,
                    "Argument n_permutations must be an integer >= 0, got -5"),
    "decode_seed": (lambda m, a, n: dnnrsa.decode(n, "0", target="identity", seed=-1),
                    ValueError, "Argument seed must be an integer >= 0, got -1"),
    "decode_cv_synthetic": (lambda m, a, n: dnnrsa.decode(n, "0", target="identity",
                                                          cv="viewpont", stimuli="synthetic"),
                            ValueError, "Unknown value 'viewpont' for argument cv.* Valid "
                            "values are \\{identity, sex, expression, viewpoint"),
    "decode_target_own": (lambda m, a, n: dnnrsa.decode(n, "0", target="identiy",
                                                        stimuli=_stim(m)), ValueError,
                          "Unknown value 'identiy' for argument target"),
    "decode_checkpoint": (lambda m, a, n: dnnrsa.decode("/nonexistent/x.safetensors", "dense3",
                                                        target="identity", stimuli="synthetic"),
                          FileNotFoundError, "/nonexistent/x"),
    # the zoo
    "variant": (lambda m, a, n: zoo.train_variant("expresion"), ValueError,
                "Unknown value 'expresion' for argument variant. Valid values are"),
    "variant_data": (lambda m, a, n: zoo.train_variant("expression", data="kaggle"), ValueError,
                     "Unknown value 'kaggle' for argument data"),
    "variant_epochs": (lambda m, a, n: zoo.train_variant("untrained", epochs=5), ValueError,
                       "epochs=5 does not apply to the untrained variant"),
    "variant_seeds": (lambda m, a, n: zoo.train_variant("untrained", seeds=[0, 0]), ValueError,
                      "Argument seeds lists a seed twice"),
    "variant_both": (lambda m, a, n: zoo.train_variant("untrained", seed=0, seeds=[1]),
                     ValueError, "seed=0 and seeds=\\[1\\] were both given"),
    "variant_precision": (lambda m, a, n: zoo.train_variant("untrained", precision="fp16"),
                          ValueError, "Unknown value 'fp16' for argument precision"),
    "train_target": (lambda m, a, n: zoo.train(n, _stim(m), target="identiy", epochs=1),
                     ValueError, "Unknown value 'identiy' for argument target"),
    "train_optimizer": (lambda m, a, n: zoo.train(n, _stim(m), target="identity", epochs=1,
                                                  optimizer="adamw"), ValueError,
                        "Unknown value 'adamw' for argument optimizer"),
    "train_lr": (lambda m, a, n: zoo.train(n, _stim(m), target="identity", epochs=1, lr=-1),
                 ValueError, "Argument lr must be a finite number > 0"),
    "train_model": (lambda m, a, n: zoo.train("net", _stim(m), target="identity", epochs=1),
                    TypeError, "Argument model must be a torch.nn.Module"),
    "load_model_missing": (lambda m, a, n: zoo.load_model("expression", seed=7),
                           FileNotFoundError, "No trained 'expression' network for seed 7.*"
                           "dnnrsa train expression --seed 7"),
    # reproduce
    "reproduce_data": (lambda m, a, n: dnnrsa.reproduce(data="kaggle"), ValueError,
                       "Unknown value 'kaggle' for argument data"),
    "reproduce_networks": (lambda m, a, n: dnnrsa.reproduce(networks=[]), ValueError,
                           "Argument networks is empty"),
    "reproduce_targets": (lambda m, a, n: dnnrsa.reproduce(targets=["sex"]), ValueError,
                          "Unknown value 'sex' for argument targets"),
    "reproduce_jobs": (lambda m, a, n: dnnrsa.reproduce(n_jobs=0), ValueError,
                       "Argument n_jobs must be an integer >= 1, got 0"),
    "reproduce_seeds": (lambda m, a, n: dnnrsa.reproduce(seeds=0), ValueError,
                        "Argument seeds must be an integer >= 1, got 0"),
    "reproduce_stimuli": (lambda m, a, n: dnnrsa.reproduce(stimuli="kdef"), TypeError,
                          "Argument stimuli must be a dnnrsa.StimulusSet or None, got str"),
    # neural and encoding
    "from_images_rows": (lambda m, a, n: neural.from_images(_bold(), m.iloc[:5]), ValueError,
                         "imgs hold 24 images but table has 5 rows"),
    "from_images_file": (lambda m, a, n: neural.from_images("/nonexistent/b.nii.gz", m),
                         FileNotFoundError, "Argument imgs: no image file at /nonexistent"),
    "encode_brain": (lambda m, a, n: dnnrsa.encode(a, np.zeros(3)), TypeError,
                     "Argument brain must be an Activations"),
    "encode_backend": (lambda m, a, n: dnnrsa.encode(a, a, backend="skl"), ValueError,
                       "Unknown value 'skl' for argument backend"),
    "encode_alphas": (lambda m, a, n: dnnrsa.encode(a, a, alphas=[-1.0]), ValueError,
                      "Argument alphas must hold finite penalties > 0"),
    "encode_conditions": (lambda m, a, n: dnnrsa.encode(a, a, conditions="identiy"),
                          ValueError, "Unknown value 'identiy' for argument conditions"),
}


def _stim(meta):
    return StimulusSet(np.random.default_rng(0).random((len(meta), 1, 16, 16)), meta,
                       name="toy")


def _bold():
    data = np.random.default_rng(0).random((3, 3, 3, 24)).astype(np.float32)
    return nib.Nifti1Image(data, np.eye(4))


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_refuses_bad_input(case, meta, acts, net, home, monkeypatch):
    call, exc, match = API_CASES[case]
    # Nothing is rendered or trained before the refusal: the full face set and the
    # training loop would fail this test instead of the expected error.
    monkeypatch.setattr(_resolve, "default_stimuli", _boom)
    before = _files(home)
    with pytest.raises(exc, match=match):
        call(meta, acts, net)
    assert _files(home) == before


def test_train_refuses_zero_epochs(meta, net):
    with pytest.raises(ValueError, match="Argument epochs must be an integer >= 1, got 0"):
        zoo.train(net, _stim(meta), target="identity", epochs=0)


def test_activations_refuse_a_provenance_that_is_not_json(meta):
    with pytest.raises((TypeError, ValueError), match="provenance"):
        Activations(np.zeros((len(meta), 3)), meta, provenance={"a": object()})


def test_reproduce_refuses_its_output_before_any_work(tmp_path, home, monkeypatch):
    monkeypatch.setattr(datasets, "synthetic_faces", _boom)
    (tmp_path / "results.csv").write_text("x")
    before = _files(tmp_path)
    with pytest.raises(ValueError, match="Argument out='.*results.csv' is a file, not a folder"):
        dnnrsa.reproduce(out=tmp_path / "results.csv", quick=True)
    with pytest.raises(ValueError, match="Argument out='.*' cannot be created: .*results.csv' "
                       "is a file"):
        dnnrsa.reproduce(out=tmp_path / "results.csv" / "run1", quick=True)
    assert _files(tmp_path) == before


def test_decode_checks_layer_target_and_cv_before_rendering(home, monkeypatch):
    zoo.train_variant("untrained", quick=True)
    monkeypatch.setattr(_resolve, "default_stimuli", _boom)
    monkeypatch.delenv("DNNRSA_DATA", raising=False)
    with pytest.raises(ValueError, match="Unknown value 'dense9' for argument layers"):
        dnnrsa.decode("untrained", "dense9", target="identity", quick=True)
    monkeypatch.setattr(_resolve, "resolve_model", _boom)
    with pytest.raises(ValueError, match="Unknown value 'viewpont' for argument cv"):
        dnnrsa.decode("untrained", "dense3", target="identity", cv="viewpont", quick=True)
    with pytest.raises(ValueError, match="Unknown value 'identiy' for argument target"):
        dnnrsa.decode("untrained", "dense3", target="identiy", quick=True)


# ------------------------------------------------------------------- the command line


def _one_error_line(capsys, match, command):
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"dnnrsa {command}: error: ")
    assert "Traceback" not in captured.err + captured.out
    assert match in lines[0] or re.search(match, lines[0]), lines[0]


def _argv_cases(tmp):
    afile = tmp / "afile"
    return [
        (["decode", "untrained", "dense3", "--target", "identity", "--cv", "viewpont"],
         "Unknown value 'viewpont' for argument cv"),
        (["decode", "untrained", "dense3", "--target", "identiy"],
         "Unknown value 'identiy' for argument target"),
        (["decode", "untrained", "dense3", "--target", "identity", "--permutations", "-5"],
         "n_permutations must be an integer >= 0, got -5"),
        (["decode", "untrained", "dense3", "--target", "identity", "--epochs", "0"],
         "epochs must be an integer >= 1, got 0"),
        (["decode", "untrained", "dense3", "--target", "identity", "--csv", str(tmp)],
         "is a folder, not a file"),
        (["decode", "untrained", "dense3", "--target", "identity", "--csv",
          str(afile / "r.csv")], "cannot be created: '.*afile' is a file"),
        (["decode", "untrained", "dense3", "--target", "identity", "--home", str(afile)],
         "--home='.*afile' is a file, not a folder"),
        (["reproduce", "--out", str(afile)], "Argument --out='.*afile' is a file, not a folder"),
        (["reproduce", "--out", str(afile / "run")], "cannot be created"),
        (["reproduce", "--out", str(tmp / "run"), "--home", str(afile)],
         "Argument --home='.*afile' is a file, not a folder"),
        (["train", "untrained", "--quick", "--home", str(afile / "m")], "cannot be created"),
        (["models", "--home", str(afile)], "is a file, not a folder"),
        (["data", "check", "kdef", str(afile)],
         "is a file, not a folder: give the folder holding the kdef copy"),
    ]


@pytest.mark.parametrize("index", range(13))
def test_cli_bad_inputs_are_one_line_exit_2_and_write_nothing(index, tmp_path, home,
                                                              monkeypatch, capsys):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(_resolve, "default_stimuli", _boom)
    if index >= 7:  # decode's early checks use one tiny synthetic face; the others none
        monkeypatch.setattr(datasets, "synthetic_faces", _boom)
    monkeypatch.delenv("DNNRSA_DATA", raising=False)
    argv, match = _argv_cases(tmp_path)[index]
    before = _files(tmp_path)
    assert main(argv) == 2
    command = " ".join(argv[:2]) if argv[0] == "data" else argv[0]
    _one_error_line(capsys, match, command)
    assert _files(tmp_path) == before


def test_cli_decode_csv_into_a_new_folder_is_created_at_the_end(home, tmp_path, monkeypatch,
                                                                capsys):
    class _Result:
        def to_frame(self):
            return pd.DataFrame({"held_out": ["S"], "accuracy": [0.5], "n_train": [2],
                                 "n_test": [1]})

    monkeypatch.setattr(dnnrsa.study, "decode", lambda *a, **k: _Result())
    csv = tmp_path / "new" / "rows.csv"
    assert main(["decode", "untrained", "dense3", "--target", "identity", "--csv",
                 str(csv)]) == 0
    assert pd.read_csv(csv).accuracy.tolist() == [0.5]
    assert _files(tmp_path) == {"new", "new/rows.csv"}  # no temporary file left


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


def _safetensor_error():
    from safetensors import SafetensorError

    return SafetensorError("Error while deserializing header: HeaderTooLarge")


@pytest.mark.parametrize("exc, match", [
    (PermissionError(errno.EACCES, "Permission denied", "/m/models.json"),
     "Permission denied: /m/models.json"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/m/x.json"), "Is a directory: /m/x.json"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/m/f/x"), "Not a directory: /m/f/x"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device \\(free some"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "Read-only file system: /ro/x"),
    (OSError(errno.EIO, "Input/output error", "/disk/x"), "Input/output error: /disk/x"),
    (json.JSONDecodeError("Expecting value", "{", 1), "Expecting value: line 1 column 2"),
    (_safetensor_error(), "corrupt or unreadable safetensors checkpoint: .*HeaderTooLarge"),
    (ValueError("first line\n  second line"), "first line second line"),
])
def test_cli_maps_user_errors_to_one_line(exc, match, home, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "list_models", _raise(exc))
    assert main(["models"]) == 2
    _one_error_line(capsys, match, "models")


def test_cli_shows_a_bug_with_its_traceback_and_asks_for_a_report(home, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "list_models", _raise(KeyError("oops")))
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'oops'" in err
    assert err.splitlines()[-1].startswith("dnnrsa models: internal error (KeyError); this is "
                                           "a bug. Please report it at")
    assert "with -v" in err.splitlines()[-1]
    # An OSError that names no file and no errno a user can act on is a bug, too.
    monkeypatch.setattr(zoo, "list_models", _raise(OSError("socket closed")))
    assert main(["models"]) == 1


def test_cli_verbose_shows_tracebacks_for_all(home, monkeypatch):
    monkeypatch.setattr(zoo, "list_models", _raise(PermissionError(13, "Permission denied")))
    with pytest.raises(PermissionError):
        main(["-v", "models"])
    monkeypatch.setattr(zoo, "list_models", _raise(KeyError("oops")))
    with pytest.raises(KeyError):
        main(["-v", "models"])


def test_installed_command_bad_cv_is_one_line_before_rendering(tmp_path):
    env = dict(os.environ, DNNRSA_HOME=str(tmp_path / "h"))
    env.pop("DNNRSA_DATA", None)
    proc = subprocess.run([sys.executable, "-m", "dnnrsa.cli", "decode", "untrained", "dense3",
                           "--quick", "--target", "identity", "--cv", "viewpont", "--csv",
                           str(tmp_path / "out" / "r.csv")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "Unknown value 'viewpont' for argument cv" in proc.stderr
    assert _files(tmp_path) == set()
