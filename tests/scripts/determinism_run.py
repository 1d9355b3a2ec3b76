"""One small pass through every stage that draws random numbers, printed as one SHA-256
per output: tests/test_determinism.py runs it in fresh processes and compares the digests.

    python tests/scripts/determinism_run.py THREADS
"""

import hashlib
import json
import sys

import numpy as np
import torch

import dnnrsa
from dnnrsa import zoo
from dnnrsa._utils import torch_seed


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:16]


def main(threads: int) -> dict:
    torch.set_num_threads(threads)
    out = {}
    faces = dnnrsa.datasets.synthetic_faces(n_identities=5, expressions=("HA", "NE", "SU"),
                                            sessions=("A",), size=16)
    out["faces"] = digest(faces.images)
    # one net alone (dropout from the global generator), flips, SGD
    with torch_seed(3):
        net = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16, dropout=0.1)
    hist = zoo.train(net, faces, target="expression", epochs=2, batch_size=8, seed=3,
                     augment="hflip", device="cpu", progress=False)
    out["train_one"] = digest(*[p.detach() for p in net.state_dict().values()], hist.loss)
    # two nets trained together (one thread each), Adam
    nets = []
    for s in (1, 2):
        with torch_seed(s):
            nets.append(zoo.build("ccn2022", n_classes=3, growth=4, input_size=16,
                                  dropout=0.1))
    zoo.train(nets, faces, target="expression", epochs=2, batch_size=8, seeds=[1, 2],
              optimizer="adam", lr=2e-3, device="cpu", progress=False)
    out["train_together"] = digest(*[p.detach() for m in nets for p in m.state_dict().values()])
    # the later stages on an untrained net, so that each stage's digest is its own
    with torch_seed(5):
        fresh = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
    acts = dnnrsa.extract(fresh, faces, ["conv1", "dense2"], device="cpu", progress=False)
    out["extract"] = digest(acts["conv1"].X, acts["dense2"].X)
    paper = dnnrsa.decode(acts["dense2"], target="identity", cv="viewpoint", readout="paper",
                          epochs=3, seed=4, device="cpu")
    out["decode_paper"] = digest(paper.folds, paper.confusion)
    linear = dnnrsa.decode(acts["conv1"], target="identity", cv="viewpoint", readout="linear",
                           n_permutations=5, seed=4, device="cpu")
    out["decode_linear"] = digest(linear.folds, linear.confusion, linear.null)
    grid = dnnrsa.decoding.decode_grid([acts["dense2"]], targets=["identity", "expression"],
                                       cv="viewpoint", readout="paper", seeds=[0], epochs=3,
                                       device="cpu")
    out["decode_grid"] = digest(*[a for g in grid for a in (g.folds, g.confusion)])
    rdm_a = dnnrsa.rdm(acts["dense2"], conditions="identity")
    rdm_b = dnnrsa.rdm(acts["conv1"], conditions="identity")
    out["rdm"] = digest(rdm_a.dissimilarities, rdm_b.dissimilarities)
    out["compare"] = digest(np.asarray(dnnrsa.compare(rdm_a, rdm_b, method="spearman")))
    boot = dnnrsa.rsa.bootstrap(rdm_a, rdm_b, method="spearman", over="conditions",
                                n_boot=50, seed=7)
    out["bootstrap"] = digest(boot[["estimate", "se", "ci_low", "ci_high"]].to_numpy(float))
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
