"""Checkpoints that cannot lie: the sidecar vouches for the exact weights file, every kind of
broken file is refused with a message naming it, and a save killed at any point never leaves
a pair that loads and reports the wrong network."""

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import dnnrsa
from dnnrsa import zoo
from dnnrsa.zoo import _checkpoint

FIX = r"dnnrsa train .*--overwrite"


def _net(seed=0):
    torch.manual_seed(seed)
    net = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
    net.dnnrsa_info = dict(seed=seed, epoch=1, classes=["a", "b", "c"], test_accuracy=0.5)
    return net


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _data_start(path: Path) -> int:
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + n


def _make_legacy(path: Path, net) -> None:
    """Rewrite ``path`` as dnnrsa 0.2 did: weights without embedded info, no checksum."""
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={"format": "dnnrsa.checkpoint/1"})
    sidecar = path.with_suffix(".json")
    info = json.loads(sidecar.read_text())
    for key in ("weights_sha256", "weights_bytes"):
        del info[key]
    info["format"] = "dnnrsa.checkpoint/1"
    sidecar.write_text(json.dumps(info))


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_round_trip_keeps_weights_and_sidecar_and_the_sidecar_vouches_for_the_file(tmp_path):
    net = _net()
    path = zoo.save(net, tmp_path / "net", variant="expression")
    back = zoo.load(path, device="cpu")
    assert _states_equal(net, back)
    assert back.dnnrsa_info == dict(seed=0, epoch=1, classes=["a", "b", "c"],
                                    test_accuracy=0.5, variant="expression",
                                    dnnrsa_version=dnnrsa.__version__)
    info = zoo.read_info(path)
    raw = path.read_bytes()
    assert info["weights_sha256"] == hashlib.sha256(raw).hexdigest()
    assert info["weights_bytes"] == len(raw)
    assert info["format"] == _checkpoint.FORMAT and info["config"] == net.config
    # A lone weights file still knows what it is: the sidecar, less the file fields.
    with safe_open(str(path), "pt") as f:
        embedded = json.loads(f.metadata()["dnnrsa_info"])
    assert embedded == {k: v for k, v in info.items()
                        if k not in ("weights_sha256", "weights_bytes")}
    assert _leftovers(tmp_path) == []


def test_flipped_tensor_bytes_are_refused_naming_the_file(tmp_path):
    path = zoo.save(_net(), tmp_path / "net")
    raw = bytearray(path.read_bytes())
    start = _data_start(path) + 100
    raw[start:start + 400] = bytes(b ^ 0xFF for b in raw[start:start + 400])
    path.write_bytes(bytes(raw))  # same size: only the checksum can tell
    msg = rf"{path}.*does not match its sidecar \(interrupted save or edited file\).*{FIX}"
    with pytest.raises(ValueError, match=msg):
        zoo.load(path)
    with pytest.raises(ValueError, match=msg):
        zoo.read_info(path)
    assert zoo.read_info(path, verify=False)["epoch"] == 1  # the sidecar alone still reads


def test_load_model_names_the_exact_retrain_command(home):
    path = zoo.train_variant("untrained", 0, quick=True)
    raw = bytearray(path.read_bytes())
    raw[-10:] = b"\0" * 10
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"`dnnrsa train untrained --seed 0 --quick --overwrite`"):
        dnnrsa.load_model("untrained", seed=0, quick=True)
    assert zoo.list_models().empty  # an unverifiable checkpoint is not listed as trained


def test_truncated_file_is_refused(tmp_path, caplog):
    net = _net()
    path = zoo.save(net, tmp_path / "net")
    full = path.read_bytes()
    path.write_bytes(full[:-1000])
    with pytest.raises(ValueError, match=rf"{path} does not match .* it is \d+ bytes"):
        zoo.load(path)
    # Without a checksum to compare (old sidecar) the structure still gives it away.
    _make_legacy(path, net)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ValueError, match=rf"{path} has \d+ bytes of tensor data where its "
                                         rf"header describes \d+ \(truncated.*{FIX}"):
        zoo.load(path)
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(ValueError, match=rf"{path} is 5 bytes, too short .*\(truncated\)"):
        zoo.load(path)


def test_pickle_renamed_safetensors_is_refused(tmp_path):
    net = _net()
    path = zoo.save(net, tmp_path / "net")
    torch.save(net.state_dict(), path)
    msg = rf"{path} holds pickle data.*allow_pickle=True.*{FIX}"
    with pytest.raises(ValueError, match=msg):
        zoo.load(path)
    with pytest.raises(ValueError, match=msg):
        dnnrsa.load_model(str(path))
    # With the opt-in, this sidecar still vouches for other bytes: refused by the checksum.
    with pytest.raises(ValueError, match="does not match its sidecar"):
        zoo.load(path, allow_pickle=True)
    with pytest.raises(TypeError, match="allow_pickle must be True or False, got 'yes'"):
        zoo.load(path, allow_pickle="yes")


def test_allow_pickle_loads_a_state_dict_through_weights_only(tmp_path, monkeypatch, caplog):
    net = _net()
    path = zoo.save(net, tmp_path / "net")
    _make_legacy(path, net)  # a hand-made sidecar for the .pt: no checksum
    pt = tmp_path / "net.pt"
    torch.save(net.state_dict(), pt)
    path.unlink()
    with pytest.raises(ValueError, match=rf"{pt} holds pickle data"):
        zoo.load(pt)
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    with caplog.at_level("WARNING", logger="dnnrsa"):
        back = zoo.load(pt, allow_pickle=True, device="cpu")
    assert calls == [True]
    assert _states_equal(net, back)
    assert "cannot be verified" in caplog.text
    # weights_only refuses objects that would run code, and a pickle that is no state dict.
    torch.save({"w": os.system}, pt)
    with pytest.raises(ValueError, match=rf"{pt} could not be read by torch.load"):
        zoo.load(pt, allow_pickle=True)
    torch.save([torch.zeros(2)], pt)
    with pytest.raises(ValueError, match=rf"{pt} holds a list, not a state dict"):
        zoo.load(pt, allow_pickle=True)


def test_corrupted_header_is_refused(tmp_path):
    net = _net()
    path = zoo.save(net, tmp_path / "net")
    raw = bytearray(path.read_bytes())
    raw[8:40] = b"#" * 32
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{path} does not match its sidecar"):
        zoo.load(path)
    _make_legacy(path, net)
    raw = bytearray(path.read_bytes())
    raw[8:40] = b"#" * 32
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{path} has a corrupted header \(not JSON.*{FIX}"):
        zoo.load(path)
    raw[:8] = struct.pack("<Q", 10**12)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{path} has a corrupted or truncated header: it "
                                         r"claims 1000000000000 bytes"):
        zoo.load(path)


def test_broken_or_missing_sidecars_are_refused(tmp_path):
    path = zoo.save(_net(), tmp_path / "net")
    sidecar = path.with_suffix(".json")
    good = sidecar.read_text()
    sidecar.write_text("[1, 2]")
    with pytest.raises(ValueError, match=rf"{sidecar} holds a JSON list, not an object.*{FIX}"):
        zoo.load(path)
    with pytest.raises(ValueError, match="holds a JSON list"):
        zoo.read_info(path, verify=False)
    sidecar.write_text("{not json")
    with pytest.raises(ValueError, match=rf"{sidecar} is not valid JSON"):
        zoo.load(path)
    sidecar.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=rf"{sidecar} is not valid JSON"):
        zoo.load(path)
    info = json.loads(good)
    info["weights_sha256"] = 12
    sidecar.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"malformed weights_sha256 \(12\)"):
        zoo.load(path)
    sidecar.unlink()
    with pytest.raises(FileNotFoundError, match=rf"No checkpoint sidecar at {sidecar}.*"
                                                rf"is there alone.*{FIX}"):
        zoo.load(path)
    sidecar.write_text(good)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"weights {path} are missing.*{FIX}"):
        zoo.load(path)


def test_an_interrupted_overwrite_leaves_the_old_pair_or_a_refused_one(tmp_path, monkeypatch):
    old = _net(0)
    path = zoo.save(old, tmp_path / "net")
    new = _net(1)
    new.dnnrsa_info["epoch"] = 2
    with monkeypatch.context() as m:  # killed before any rename: the old pair, intact
        m.setattr(_checkpoint.os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("x")))
        with pytest.raises(OSError):
            zoo.save(new, path)
    back = zoo.load(path)
    assert back.dnnrsa_info["epoch"] == 1 and _states_equal(old, back)
    with monkeypatch.context() as m:  # killed between the renames: refused, never the old epoch
        m.setattr(_checkpoint.os, "replace", _kill_between(os.replace))
        with pytest.raises(OSError, match="killed"):
            zoo.save(new, path)
    for reader in (zoo.load, zoo.read_info):
        with pytest.raises(ValueError, match=rf"{path} does not match its sidecar "
                                             r"\(interrupted save or edited file\)"):
            reader(path)
    assert _leftovers(tmp_path) == []  # the dying save cleaned its temporaries
    assert zoo.load(zoo.save(new, path)).dnnrsa_info["epoch"] == 2  # a retrain repairs it


def _kill_between(real):
    calls = []

    def replace(src, dst):
        if calls:
            raise OSError("killed")
        calls.append(dst)
        real(src, dst)

    return replace


def test_an_interrupted_first_save_is_retrained_not_trusted(home, monkeypatch):
    path = zoo.checkpoint_path("untrained", 0, quick=True)
    with monkeypatch.context() as m:
        m.setattr(_checkpoint.os, "replace", _kill_between(os.replace))
        with pytest.raises(OSError, match="killed"):
            zoo.train_variant("untrained", 0, quick=True)
    assert path.with_suffix(".json").exists() and not path.exists()
    with pytest.raises(FileNotFoundError):
        dnnrsa.load_model("untrained", seed=0, quick=True)
    zoo.train_variant("untrained", 0, quick=True)  # no --overwrite needed: weights not there
    assert dnnrsa.load_model("untrained", seed=0, quick=True).dnnrsa_info["seed"] == 0


_CHILD = """
import os, sys, torch
from dnnrsa import zoo
from dnnrsa.zoo import _checkpoint
real = os.replace
def replace(src, dst):
    real(src, dst)
    os._exit(9)  # SIGKILL-like: no finally, no cleanup
_checkpoint.os.replace = replace
torch.manual_seed(1)
net = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
net.dnnrsa_info = dict(epoch=2)
zoo.save(net, sys.argv[1])
"""


def test_a_killed_save_leaves_a_refused_pair_and_orphans_the_next_save_removes(tmp_path):
    path = zoo.save(_net(), tmp_path / "net")
    child = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                           timeout=60, cwd=Path(__file__).parents[1])
    assert child.returncode == 9, child.stderr.decode()
    orphans = _leftovers(tmp_path)
    assert len(orphans) == 1 and orphans[0].startswith("net.safetensors~")  # weights temp
    with pytest.raises(ValueError, match=rf"{path} does not match its sidecar"):
        zoo.load(path)
    # Temporaries of a live process on this host, or of another host, are left alone.
    host = socket.gethostname()
    live = tmp_path / f"other.safetensors~{host}~{os.getppid()}~abcd.partial"
    remote = tmp_path / f"other.safetensors~not-{host}~1~abcd.partial"
    for p in (live, remote):
        p.write_bytes(b"x")
    zoo.save(_net(), path)
    assert _leftovers(tmp_path) == sorted([live.name, remote.name])
    assert zoo.load(path).dnnrsa_info["epoch"] == 1


def test_both_files_get_the_same_mode_from_the_umask(tmp_path):
    for umask in (0o022, 0o027):
        previous = os.umask(umask)
        try:
            path = zoo.save(_net(), tmp_path / f"net{umask:o}")
        finally:
            os.umask(previous)
        modes = {p.suffix: p.stat().st_mode & 0o777 for p in (path, path.with_suffix(".json"))}
        assert modes == {".safetensors": 0o666 & ~umask, ".json": 0o666 & ~umask}


def test_old_format_checkpoints_load_with_a_warning(tmp_path, caplog):
    net = _net()
    path = zoo.save(net, tmp_path / "net")
    _make_legacy(path, net)
    with caplog.at_level("WARNING", logger="dnnrsa"):
        back = zoo.load(path)
    assert _states_equal(net, back) and back.dnnrsa_info["epoch"] == 1
    assert f"Checkpoint {path} cannot be verified" in caplog.text
    assert "dnnrsa.checkpoint/1" in caplog.text
    # New weights (they carry their description) beside a sidecar without a checksum are
    # not a pair: an old sidecar, or one whose checksum was removed by hand.
    sidecar = path.with_suffix(".json").read_text()
    zoo.save(net, path)
    path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(ValueError, match=rf"{path} does not match its sidecar .*lacks"):
        zoo.load(path)


def test_a_path_with_nothing_there_names_the_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at .*missing\.safetensors"):
        zoo.load(tmp_path / "missing.safetensors")


def test_a_dotted_name_keeps_its_dots(tmp_path):
    """zoo.save(model, "run.v2") wrote run.safetensors and run.json, over any checkpoint
    named run: only a known suffix is replaced now."""
    from dnnrsa import zoo

    net = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
    other = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
    zoo.save(other, tmp_path / "run")
    path = zoo.save(net, tmp_path / "run.v2")
    assert path == tmp_path / "run.v2.safetensors"
    assert (tmp_path / "run.v2.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run.json", "run.safetensors", "run.v2.json", "run.v2.safetensors"]
    loaded = zoo.load(tmp_path / "run.v2.safetensors", device="cpu")
    assert all((a == b).all() for a, b in zip(loaded.state_dict().values(),
                                              net.state_dict().values()))
