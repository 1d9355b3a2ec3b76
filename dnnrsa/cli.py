"""The ``dnnrsa`` command.

Errors a user can fix (bad arguments, missing or unreadable files, folders that cannot be
written, a full disk, corrupt JSON or safetensors files) print one line to stderr and exit
with status 2, no traceback; outputs are checked before any work. Anything else is a bug:
its traceback is shown with a request to report it. ``-v`` shows every traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import datasets, study, zoo
from ._utils import atomic_write_bytes, check_output_path, check_seed_list, dnnrsa_home
from ._version import __version__

#: Where a genuine bug should be reported (shown under its traceback).
ISSUE_TRACKER = "the dnnrsa issue tracker"

#: OSError numbers a user can do something about even when no file is named.
_USER_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def _safetensors_errors() -> tuple[type[BaseException], ...]:
    try:  # a corrupt or truncated checkpoint
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - older safetensors
        try:
            from safetensors.safetensors_rust import SafetensorError
        except ImportError:
            return ()
    return (SafetensorError,)


def _is_user_error(exc: BaseException) -> bool:
    """True for the errors the user can fix, which are one line and exit status 2."""
    if isinstance(exc, (ValueError, TypeError, json.JSONDecodeError, *_safetensors_errors())):
        return True
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError,
                        NotADirectoryError, FileExistsError)):
        return True
    return isinstance(exc, OSError) and (exc.filename is not None
                                         or exc.errno in _USER_ERRNOS)


def _one_line(exc: BaseException) -> str:
    """The error as one line: multi-line messages are joined, an OSError names its file."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        text = f"{exc.strerror}{where}"
        if exc.errno == errno.ENOSPC:
            text += " (free some space or write somewhere else)"
    else:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, _safetensors_errors()):
            text = f"corrupt or unreadable safetensors checkpoint: {text}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _home_for_reading(home) -> None:
    """A models folder that is read from must not be a file (it may be missing)."""
    path = dnnrsa_home(home)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{_home_name(home)}={str(path)!r} is a file, not a folder: give "
                         "the models folder (it is created by `dnnrsa train`).")


def _home_for_writing(home) -> None:
    check_output_path(_home_name(home), dnnrsa_home(home), kind="folder")


def _home_name(home) -> str:
    return "--home" if home is not None else "--home (from $DNNRSA_HOME or ~/.cache/dnnrsa)"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"dnnrsa: error: {message}\n")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train (or initialise) one of the study's networks and save it to the models folder",
        description="Train a variant x seed of the CCN-2022 DenseNet and save it as a "
        "safetensors checkpoint where dnnrsa.load_model finds it.",
    )
    p.add_argument("variant", help=f"one of {{{', '.join(zoo.VARIANTS)}}}")
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="network seed(s) (default 0); several train together, one ensemble, "
                   "and are saved one checkpoint per seed")
    p.add_argument("--data", default="synthetic",
                   help="synthetic (rendered, the default) or paper (local copies of the real sets)")
    p.add_argument("--data-root", default=None,
                   help="folder holding the real data sets (default: $DNNRSA_DATA)")
    p.add_argument("--quick", action="store_true",
                   help="narrow network, 32 px, few epochs: minutes on a CPU (a recipe of its "
                   "own: never mistaken for the full network)")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the preset's number of epochs (also a recipe of its own)")
    p.add_argument("--home", default=None, help="models folder (default: $DNNRSA_HOME or ~/.cache/dnnrsa)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")
    p.add_argument("--overwrite", action="store_true", help="retrain even if the checkpoint exists")
    p.add_argument("--on-problem", default="raise", choices=("raise", "skip"),
                   help="with --data paper: raise (default) on a copy that does not match its "
                   "manifest, or skip: train on the usable part (a recipe of its own)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto (default): bf16 autocast on a GPU, fp32 on a CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--resume", action="store_true",
                   help="continue each unfinished seed from its training state "
                   "(seedNN.state.pt, written every --state-every epochs) instead of "
                   "starting over; on a CPU the result is bit-identical to an uninterrupted run")
    p.add_argument("--state-every", type=int, default=1, metavar="N",
                   help="write the resumable training state every N epochs (default 1)")
    p.add_argument("--keep-epochs", type=int, nargs="+", default=None, metavar="E",
                   help="also save the network after these epochs (seedNN-epochEEEE."
                   "safetensors); load one with load_model(..., epoch=E)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    zoo.recipe(args.variant, data=args.data, quick=args.quick, epochs=args.epochs,
               on_problem=args.on_problem)  # fail early
    seeds = check_seed_list("seed", args.seed, count_ok=False)  # named as on the command line
    _home_for_writing(args.home)
    paths = zoo.train_variant(
        args.variant, seeds=seeds, data=args.data, quick=args.quick, epochs=args.epochs,
        home=args.home, device=args.device, data_root=args.data_root,
        overwrite=args.overwrite, on_problem=args.on_problem, precision=args.precision,
        compile=args.compile, resume=args.resume, keep_epochs=args.keep_epochs,
        state_every=args.state_every,
    )
    for seed, path in zip(args.seed, paths):
        info = zoo.read_info(path)
        acc = info.get("test_accuracy")
        acc_txt = f", held-out accuracy {acc:.3f}" if acc is not None else ""
        print(f"{args.variant} seed {seed}: {path}{acc_txt}")
    return 0


def _add_reproduce(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run the CCN-2022 study: train/load networks, decode every layer, draw Figure 2",
        description="Train or load each network x seed, extract conv1/dense1/dense2/dense3 for "
        "the test faces, read out identity and expression on a held-out viewpoint, add the "
        "pixel control; write results.csv, summary.csv, fig2a.png, fig2b.png and report.md.",
    )
    p.add_argument("--out", required=True, help="folder for the results, figures and report")
    p.add_argument("--data", default="synthetic", help="synthetic (default) or paper")
    p.add_argument("--data-root", default=None, help="folder of the real data sets (default: $DNNRSA_DATA)")
    p.add_argument("--quick", action="store_true",
                   help="small networks, few seeds, short readouts: minutes on a CPU")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds (default 10, the paper's; 5 with --quick)")
    p.add_argument("--networks", nargs="+", default=["expression", "identity", "scene", "untrained"])
    p.add_argument("--layers", nargs="+", default=list(zoo.PAPER_LAYERS))
    p.add_argument("--targets", nargs="+", default=["identity", "expression"])
    p.add_argument("--readout", default="paper", help="paper (default) or linear")
    p.add_argument("--readout-epochs", type=int, default=None,
                   help="epochs of the paper readout (default 100; 15 with --quick)")
    p.add_argument("--home", default=None, help="models folder (default: $DNNRSA_HOME or ~/.cache/dnnrsa)")
    p.add_argument("--device", default="auto")
    p.add_argument("--jobs", type=int, default=None,
                   help="networks processed at once (default: one per core on a CPU, 1 on a GPU)")
    p.add_argument("--on-problem", default="raise", choices=("raise", "skip"),
                   help="with --data paper: raise (default) before any training if a local copy "
                   "does not match its manifest, or skip: run on the usable part, listing "
                   "what was skipped in the log and the report")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the units on a Dask cluster: tcp://HOST:PORT or a scheduler file "
                   "(.json); needs pip install 'dnnrsa[distributed]'")
    p.add_argument("--no-cache", action="store_true",
                   help="neither reuse nor keep finished units (kept by default in "
                   "$DNNRSA_HOME/cache/units, so a rerun does only what is missing)")
    p.add_argument("--at-epochs", type=int, nargs="+", default=None, metavar="E",
                   help="also read out each trained network as it was after these epochs "
                   "(epochs.csv, fig_epochs.png)")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    check_output_path("--out", args.out, kind="folder")
    _home_for_writing(args.home)
    study.reproduce(
        data=args.data, networks=args.networks, seeds=args.seeds, layers=args.layers,
        targets=args.targets, quick=args.quick, readout=args.readout,
        readout_epochs=args.readout_epochs, device=args.device, out=args.out,
        home=args.home, data_root=args.data_root, n_jobs=args.jobs, on_problem=args.on_problem,
        scheduler=args.scheduler, cache=not args.no_cache, at_epochs=args.at_epochs,
    )
    print(f"Report: {args.out}/report.md")
    return 0


def _add_decode(sub) -> None:
    p = sub.add_parser(
        "decode",
        help="read a factor out of one layer of a network on held-out groups",
        description="dnnrsa.decode from the command line: prints the accuracy per fold and "
        "optionally writes the tidy rows to a CSV file.",
    )
    p.add_argument("model", help="zoo variant (expression, identity, scene, untrained) or checkpoint path")
    p.add_argument("layer", help="conv1, dense1, dense2, dense3, any module name, or pixels")
    p.add_argument("--target", required=True, help="factor to read out, e.g. identity or expression")
    p.add_argument("--cv", default="viewpoint", help="factor to leave out one level at a time, or an int")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stimuli", default=None, help="kdef or synthetic (default: KDEF if configured)")
    p.add_argument("--readout", default="paper", help="paper (default) or linear")
    p.add_argument("--epochs", type=int, default=100, help="epochs of the paper readout")
    p.add_argument("--permutations", type=int, default=0, help="label permutations for a p-value")
    p.add_argument("--data", default="synthetic", help="training data of the zoo network")
    p.add_argument("--quick", action="store_true", help="the zoo network of the quick preset")
    p.add_argument("--data-root", default=None)
    p.add_argument("--home", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--csv", default=None, help="write the per-fold rows to this CSV file")
    p.add_argument("--on-problem", default="raise", choices=("raise", "skip"),
                   help="KDEF test faces: raise (default) on a copy that does not match its "
                   "manifest, or skip: use the usable images")
    p.set_defaults(func=_cmd_decode)


def _cmd_decode(args) -> int:
    cv = int(args.cv) if args.cv.isdigit() else args.cv
    csv = check_output_path("--csv", args.csv, kind="file") if args.csv else None
    _home_for_reading(args.home)
    res = study.decode(args.model, args.layer, target=args.target, cv=cv, stimuli=args.stimuli,
                 readout=args.readout, seed=args.seed, epochs=args.epochs,
                 n_permutations=args.permutations, data=args.data, quick=args.quick,
                 data_root=args.data_root, home=args.home, device=args.device,
                 on_problem=args.on_problem)
    frame = res.to_frame()
    print(frame[["held_out", "accuracy", "n_train", "n_test"]].to_string(index=False))
    print(res)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(csv, frame.to_csv(index=False).encode())
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the trained networks in the models folder")
    p.add_argument("--home", default=None, help="models folder (default: $DNNRSA_HOME or ~/.cache/dnnrsa)")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args) -> int:
    _home_for_reading(args.home)
    table = zoo.list_models(args.home)
    if table.empty:
        print("No trained networks. Train one with `dnnrsa train VARIANT --quick`.")
        return 0
    shown = table[["variant", "data", "recipe", "seed", "test_accuracy"]]
    print(shown.to_string(index=False))
    return 0


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="list the real data sets, or check a local copy")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    lp = dsub.add_parser("list", help="the data sets dnnrsa knows and how to obtain them")
    lp.set_defaults(func=_cmd_data_list)
    cp = dsub.add_parser("check", help="verify a local copy against its manifest")
    cp.add_argument("name", help="fer2013, celeba, kdef or uc_merced")
    cp.add_argument("path", help="folder of the local copy")
    cp.add_argument("--no-verify", action="store_true",
                    help="skip checksums (layout, counts and decodability are still checked)")
    cp.set_defaults(func=_cmd_data_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _cmd_data_list(args) -> int:
    table = datasets.list_datasets()
    for _, row in table.iterrows():
        print(f"{row['name']}: {row['title']}")
        print(f"    homepage: {row['homepage']}")
        print(f"    obtain:   {row['obtain']}")
        print(f"    licence:  {row['licence']}")
        print(f"    expects:  {row['expected_files']}")
    return 0


def _cmd_data_check(args) -> int:
    path = Path(args.path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{args.path} is a file, not a folder: give the folder holding the "
                         f"{args.name} copy.")
    report = datasets.check_dataset(args.name, args.path, verify=not args.no_verify)
    print(str(report))
    return 0 if report.ok else 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dnnrsa",
        description="Decoding and RSA of deep-net layers and brain data; the CCN-2022 "
        "face study as one command.",
    )
    parser.add_argument("--version", action="version", version=f"dnnrsa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(sub)
    _add_reproduce(sub)
    _add_decode(sub)
    _add_models(sub)
    _add_data(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s")
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("dnnrsa: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        command = " ".join(filter(None, (args.command, getattr(args, "data_command", None))))
        if _is_user_error(exc):
            print(f"dnnrsa {command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"dnnrsa {command}: internal error ({type(exc).__name__}); this is a bug. "
              f"Please report it at {ISSUE_TRACKER} with the output of the same command "
              "run with -v.", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
