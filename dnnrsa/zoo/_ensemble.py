"""K CCN-2022 DenseNets of one architecture as one module, so that several seeds train in
one pass: each convolution is grouped (``groups=K``), each BatchNorm and Dropout2d runs over
the K members' channels side by side, the dense blocks concatenate member by member and
the head is a batched matrix product.

Channels are laid out member-major: member ``k`` owns channels ``[k * C, (k + 1) * C)`` of
every feature map, so a grouped convolution's group ``k`` is member ``k``'s convolution,
BatchNorm's per-channel statistics are each member's own, and stacking the members' weights
along their first dimension (:func:`stack_state`) gives the ensemble's. Nothing mixes
members: each one computes exactly what it would compute alone, and a loss that sums the
members' losses gives each member the gradient it would get alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._utils import check_seed, check_seed_list
from ._densenet import CCNDenseNet

_TRACKED = "num_batches_tracked"


def _member_cat(x: torch.Tensor, new: torch.Tensor, k: int) -> torch.Tensor:
    """Concatenate ``new`` (B, K * g, H, W) to ``x`` (B, K * C, H, W) member by member:
    member ``k``'s C channels, then its g new ones. Keeps a channels-last layout."""
    b, c, h, w = x.shape
    g = new.shape[1] // k
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        xs = x.permute(0, 2, 3, 1).reshape(b, h, w, k, c // k)
        ns = new.permute(0, 2, 3, 1).reshape(b, h, w, k, g)
        return torch.cat([xs, ns], 4).reshape(b, h, w, c + k * g).permute(0, 3, 1, 2)
    return torch.cat([x.reshape(b, k, c // k, h, w), new.reshape(b, k, g, h, w)],
                     2).reshape(b, c + k * g, h, w)


class _MemberDropout2d(nn.Module):
    """Dropout2d over K members' channels with a mask drawn before the forward pass by
    :meth:`EnsembleDenseNet.draw_dropout` (outside any compiled graph): member ``k``'s
    part is the draw a lone ``nn.Dropout2d`` would make from its generator."""

    def __init__(self, p: float, k: int, channels: int):
        super().__init__()
        self.p, self.k, self.channels = float(p), k, channels
        self.register_buffer("mask", None, persistent=False)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.mask is None or self.mask.shape[0] != x.shape[0]:
            raise RuntimeError("EnsembleDenseNet.draw_dropout(batch) must be called before "
                               "each training forward pass of a network with dropout.")
        return x * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}, members={self.k}"


class _DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int, p: float, k: int):
        super().__init__()
        self.k = k
        self.norm = nn.BatchNorm2d(k * in_channels)
        self.conv = nn.Conv2d(k * in_channels, k * growth, 3, padding=1, bias=False, groups=k)
        self.drop = _MemberDropout2d(p, k, growth)

    def forward(self, x):
        return _member_cat(x, self.drop(F.relu(self.conv(self.norm(x)))), self.k)


class _Transition(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, p: float, k: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(k * in_channels)
        self.conv = nn.Conv2d(k * in_channels, k * out_channels, 3, padding=1, bias=False,
                              groups=k)
        self.drop = _MemberDropout2d(p, k, out_channels)

    def forward(self, x):
        return F.max_pool2d(self.drop(F.relu(self.conv(self.norm(x)))), 2)


class _MemberLinear(nn.Module):
    """K linear layers: input (K, B, in), weight (K, out, in), bias (K, out)."""

    def __init__(self, k: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(k, out_features))

    def forward(self, x):
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class EnsembleDenseNet(nn.Module):
    """K :class:`CCNDenseNet` members of equal ``config`` computed as one network.

    Built from the members' architecture; their weights come in with
    :meth:`load_members` and go back with :meth:`store_members`.

    Parameters
    ----------
    reference : CCNDenseNet
        A member whose layer sizes the ensemble copies.
    k : int
        Number of members.

    Notes
    -----
    ``forward`` takes images of shape (B, K * C_in, H, W), member ``k``'s own batch in
    channels ``[k * C_in, (k + 1) * C_in)``, and returns logits of shape (K, B, n_classes).
    """

    def __init__(self, reference: CCNDenseNet, k: int):
        super().__init__()
        self.k = k
        self.config = dict(reference.config)
        self.pool = reference.pool
        self.in_channels = reference.conv1.in_channels
        c1 = reference.conv1
        self.conv1 = nn.Conv2d(k * c1.in_channels, k * c1.out_channels, 3, padding=1,
                               bias=True, groups=k)
        for name in ("dense1", "trans1", "dense2", "trans2", "dense3"):
            part = getattr(reference, name)
            if name.startswith("dense"):
                mod = nn.Sequential(*[
                    _DenseLayer(layer.conv.in_channels, layer.conv.out_channels,
                                layer.drop.p, k) for layer in part])
            else:
                mod = _Transition(part.conv.in_channels, part.conv.out_channels,
                                  part.drop.p, k)
            setattr(self, name, mod)
        self.norm = nn.BatchNorm2d(k * reference.norm.num_features)
        self.fc = _MemberLinear(k, reference.fc.in_features, reference.fc.out_features)
        for ours, theirs in zip(_norms(self), _norms(reference)):
            ours.eps, ours.momentum = theirs.eps, theirs.momentum

    @classmethod
    def from_members(cls, members: Sequence[CCNDenseNet], *, device: torch.device,
                     dtype: torch.dtype) -> EnsembleDenseNet:
        """The ensemble of ``members`` on ``device`` in ``dtype``, their weights loaded.
        Built on the meta device first, so that no initialisation draws from (and changes)
        torch's global generator."""
        with torch.device("meta"):
            ensemble = cls(members[0], len(members))
        ensemble = ensemble.to_empty(device=device).to(dtype)
        ensemble.load_members(members)
        return ensemble

    def set_generators(self, generators: Sequence[torch.Generator]) -> None:
        """The members' dropout generators, one per member (on the network's device), in
        member order."""
        self._generators = list(generators)

    @property
    def has_dropout(self) -> bool:
        return any(m.p > 0 for m in self.modules() if isinstance(m, _MemberDropout2d))

    @torch.no_grad()
    def draw_dropout(self, batch: int, dtype: torch.dtype) -> None:
        """Draw the Dropout2d masks of the next training step for ``batch`` images per
        member: each member's generator gives, layer after layer in forward order, the
        (batch, C, 1, 1) Bernoulli draw a lone network makes, divided by the keep
        probability, in ``dtype`` (that of the activations it multiplies)."""
        for m in self.modules():
            if isinstance(m, _MemberDropout2d) and m.p > 0:
                keep = 1.0 - m.p
                m.mask = torch.cat([
                    torch.empty(batch, m.channels, 1, 1, dtype=dtype, device=g.device)
                    .bernoulli_(keep, generator=g) for g in self._generators], 1).div_(keep)

    def forward(self, x):
        x = self.dense1(self.conv1(x))
        x = self.dense2(self.trans1(x))
        x = self.dense3(self.trans2(x))
        x = F.avg_pool2d(F.relu(self.norm(x)), self.pool)
        b, c, h, w = x.shape
        # each member's flatten(1) order: its (C, h, w) block, then members stacked first
        x = x.reshape(b, self.k, (c // self.k) * h * w).transpose(0, 1)
        return self.fc(x)

    @torch.no_grad()
    def load_members(self, members: Sequence[nn.Module]) -> None:
        """Copy the members' parameters and buffers in (see :func:`stack_state`), and note
        each member's BatchNorm ``num_batches_tracked`` for :meth:`store_members`."""
        device = self.conv1.weight.device
        states = [{key: v.detach().to(device) for key, v in m.state_dict().items()}
                  for m in members]
        self.load_state_dict(stack_state(states))
        self._tracked = [{key: int(v) for key, v in s.items() if key.endswith(_TRACKED)}
                         for s in states]
        self._tracked_here = {key: int(v) for key, v in self.state_dict().items()
                              if key.endswith(_TRACKED)}

    @torch.no_grad()
    def store_members(self, members: Sequence[nn.Module]) -> None:
        """Copy the trained weights back into the members loaded by :meth:`load_members`,
        in place on each member's own device; each BatchNorm's ``num_batches_tracked``
        grows by the steps taken here, from the member's own count."""
        for member, state in zip(members, self.member_states()):
            member.load_state_dict(state)

    @torch.no_grad()
    def member_states(self) -> list[dict]:
        """Each member's state dict as :meth:`store_members` would give it (copies, so that
        a saved one holds only its member's numbers)."""
        ours = self.state_dict()
        states = []
        for i in range(self.k):
            state = {}
            for key, value in ours.items():
                if key.endswith(_TRACKED):
                    steps = int(value) - self._tracked_here[key]
                    state[key] = torch.tensor(self._tracked[i][key] + steps)
                elif _is_head(key):
                    state[key] = value[i].clone()
                else:
                    state[key] = value.chunk(self.k, 0)[i].clone()
            states.append(state)
        return states


def _norms(net: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]


def _is_head(key: str) -> bool:
    return key.startswith("fc.")


def stack_state(states: Sequence[dict]) -> dict:
    """The ensemble's state dict from its members' (in member order): convolution and
    BatchNorm tensors concatenated along dim 0 (member-major channels), the head's weight
    and bias stacked into (K, out, in) and (K, out), ``num_batches_tracked`` taken from the
    first member (counts go back per member in :meth:`EnsembleDenseNet.store_members`)."""
    out = {}
    for key in states[0]:
        values = [s[key] for s in states]
        if key.endswith(_TRACKED):
            out[key] = values[0].clone()
        elif _is_head(key):
            out[key] = torch.stack(values)
        else:
            out[key] = torch.cat(values, 0)
    return out


@torch.no_grad()
def accuracy_together(net, x, y, k: int, fmt, batch_size: int = 256) -> list[float]:
    """Each member's top-1 accuracy on the same images (N, C, H, W), labels (N,)."""
    was_training = net.training
    net.eval()
    correct = torch.zeros(k, dtype=torch.long, device=x.device)
    step = max(1, batch_size // k)
    try:
        for i in range(0, len(x), step):
            xb = x[i : i + step].repeat(1, k, 1, 1).contiguous(memory_format=fmt)
            correct += (net(xb).argmax(-1) == y[i : i + step]).sum(1)
    finally:
        net.train(was_training)
    return [c / max(len(x), 1) for c in correct.tolist()]


def check_models(model, seed, seeds) -> tuple[list[nn.Module], list[int], bool]:
    """Check :func:`dnnrsa.zoo.train`'s ``model``, ``seed`` and ``seeds``: (models, seeds,
    together), the networks as a list, their seeds, and whether they can run as one
    :class:`EnsembleDenseNet`: CCNDenseNets of equal config whose weights are all trainable
    and of one dtype, float32 or float64 (others train one after another)."""
    if isinstance(model, nn.Module):
        if seeds is not None:
            raise ValueError(
                f"Argument seeds={seeds!r} is for a list of models trained together, but "
                f"model is a single {type(model).__name__}. Give seed=... for one model, or "
                "a list of models, one per seed."
            )
        return [model], [check_seed("seed", 0 if seed is None else seed)], False
    if not isinstance(model, (list, tuple)):
        raise TypeError(f"Argument model must be a torch.nn.Module or a list of them (one "
                        f"per seed), got {type(model).__name__}.")
    if not model:
        raise ValueError("Argument model is an empty list: give one network per seed.")
    for i, m in enumerate(model):
        if not isinstance(m, nn.Module):
            raise TypeError(f"Argument model[{i}] must be a torch.nn.Module, got "
                            f"{type(m).__name__}.")
    if seed is not None:
        raise ValueError(
            f"Arguments seed={seed!r} and seeds were both given. With a list of models give "
            "seeds=[...], one per model, and leave seed unset."
        )
    if seeds is None:
        raise ValueError(
            f"Argument seeds is needed with a list of {len(model)} models: give one distinct "
            f"seed per model, e.g. seeds={list(range(len(model)))}."
        )
    seeds = check_seed_list("seeds", seeds, count_ok=False)
    if len(seeds) != len(model):
        raise ValueError(f"Argument seeds has {len(seeds)} seeds for {len(model)} models; "
                         "give exactly one seed per model.")
    where = {}
    for i, m in enumerate(model):
        if id(m) in where:
            raise ValueError(f"Argument model lists the same network object twice (model"
                             f"[{where[id(m)]}] and model[{i}]); build one network per seed.")
        where[id(m)] = i
    first = model[0]
    for i, m in enumerate(model[1:], 1):
        if isinstance(first, CCNDenseNet) and isinstance(m, CCNDenseNet):
            if m.config != first.config:
                diff = sorted(k for k in set(m.config) | set(first.config)
                              if m.config.get(k) != first.config.get(k))
                raise ValueError(
                    "Models trained together must have one architecture, but model"
                    f"[{i}] differs from model[0] in "
                    + ", ".join(f"{k} ({m.config.get(k)!r} vs {first.config.get(k)!r})"
                                for k in diff)
                    + ". Build every model with the same options."
                )
        elif type(m) is not type(first) or _shapes(m) != _shapes(first):
            raise ValueError(
                f"Models trained together must have one architecture, but model[{i}] "
                f"({type(m).__name__}) differs from model[0] ({type(first).__name__}) in "
                "type or parameter shapes. Build every model the same way."
            )
    dtypes = {p.dtype for m in model for p in m.parameters()}
    # exactly CCNDenseNet: a subclass may compute something else than the ensemble does
    together = (all(type(m) is CCNDenseNet for m in model) and len(dtypes) == 1
                and dtypes <= {torch.float32, torch.float64}
                and all(p.requires_grad for m in model for p in m.parameters()))
    return list(model), seeds, together


def _shapes(model: nn.Module) -> list:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
