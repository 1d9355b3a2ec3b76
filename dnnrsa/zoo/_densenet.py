"""The CCN-2022 DenseNet (Schwartz, O'Nell, Saxe & Anzellotti 2022).

Module names are the paper's layer names, so ``extract(model, stim, layers=["dense2"])``
needs no translation table: ``conv1``, ``dense1``, ``trans1``, ``dense2``, ``trans2``,
``dense3``, then the head ``norm`` -> ReLU -> avg_pool2d -> ``fc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._utils import check_positive_int

#: The layers the study reads out, in forward order.
PAPER_LAYERS = ("conv1", "dense1", "dense2", "dense3")


def check_input_shape(model: nn.Module, shape: Sequence[int], argument: str = "stimuli") -> None:
    """Raise a clear ValueError when images of ``shape`` (C, H, W) do not fit a zoo network
    (one whose ``config`` names ``in_channels`` and ``input_size``); other networks pass.

    Training and extraction both call it, before any work."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "in_channels" not in config:
        return
    want = (config["in_channels"], config["input_size"], config["input_size"])
    if tuple(shape) != want:
        raise ValueError(
            f"Argument {argument} has images of shape {tuple(shape)} (channels, height, width) "
            f"but the model takes {want}. Render or load the images at that size "
            f"(e.g. size={want[1]}), or build the model with in_channels={shape[0]}, "
            f"input_size={shape[1]}."
        )


class DenseLayer(nn.Module):
    """BatchNorm -> 3x3 conv (``growth`` channels, no bias) -> ReLU -> Dropout2d; the output
    is concatenated to the input."""

    def __init__(self, in_channels: int, growth: int, dropout: float):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, growth, 3, padding=1, bias=False)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x):
        return torch.cat([x, self.drop(F.relu(self.conv(self.norm(x))))], 1)


class Transition(nn.Module):
    """BatchNorm -> 3x3 conv (no bias) -> ReLU -> Dropout2d -> MaxPool 2x2."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x):
        return F.max_pool2d(self.drop(F.relu(self.conv(self.norm(x)))), 2)


class CCNDenseNet(nn.Module):
    """The DenseNet of the CCN-2022 study, with options for quick CPU runs.

    Defaults give the paper's network: input 1 x 48 x 48; ``conv1`` 64 channels; three dense
    blocks of 3 layers (growth 32) with transitions halving the channels; widths
    64 / 160 / 176 / 184 at 48 / 48 / 24 / 12 pixels; head BatchNorm -> ReLU ->
    avg_pool2d(8) -> Linear(184 -> n_classes).

    Parameters
    ----------
    n_classes : int
        Number of output classes.
    in_channels : int
        Image channels (1 for the paper's grayscale input).
    growth : int
        Growth rate of the dense layers; ``conv1`` has ``2 * growth`` channels.
    depth : int
        Network depth in the DenseNet convention: ``(depth - 4) // 3`` layers per block.
    reduction : float
        Channel factor of each transition (floored).
    dropout : float
        Dropout2d rate after every dense layer and transition.
    input_size : int
        Height and width of the input, a multiple of 4.
    pool : int, optional
        Kernel of the head's average pooling. Default ``input_size // 6`` (8 at 48 px, as the
        paper). As in the paper, ``floor`` pooling on the 12 x 12 ``dense3`` map keeps only the
        top-left 8 x 8 window (quirk 2 of PAPER.md, kept for fidelity).
    """

    def __init__(
        self,
        n_classes: int = 7,
        *,
        in_channels: int = 1,
        growth: int = 32,
        depth: int = 13,
        reduction: float = 0.5,
        dropout: float = 0.1,
        input_size: int = 48,
        pool: int | None = None,
    ):
        super().__init__()
        n_classes = check_positive_int("n_classes", n_classes, 1)
        in_channels = check_positive_int("in_channels", in_channels, 1)
        growth = check_positive_int("growth", growth, 1)
        depth = check_positive_int("depth", depth, 7)
        input_size = check_positive_int("input_size", input_size, 8)
        if input_size % 4:
            raise ValueError(
                f"Argument input_size must be a multiple of 4 (two 2x2 max-pools), got {input_size}."
            )
        if not 0 < reduction <= 1:
            raise ValueError(f"Argument reduction must be in (0, 1], got {reduction}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"Argument dropout must be in [0, 1), got {dropout}.")
        final = input_size // 4
        pool = max(1, input_size // 6) if pool is None else check_positive_int("pool", pool, 1)
        if pool > final:
            raise ValueError(
                f"Argument pool={pool} is larger than the {final}x{final} map of dense3 for "
                f"input_size={input_size}; give pool <= {final}."
            )
        n_layers = (depth - 4) // 3
        self.config = dict(
            architecture="ccn2022", n_classes=n_classes, in_channels=in_channels, growth=growth,
            depth=depth, reduction=reduction, dropout=dropout, input_size=input_size, pool=pool,
        )
        self.pool = pool

        c = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, c, 3, padding=1, bias=True)
        self.widths = {"conv1": c}
        blocks, transitions = [], []
        for b in range(3):
            layers = []
            for _ in range(n_layers):
                layers.append(DenseLayer(c, growth, dropout))
                c += growth
            blocks.append(nn.Sequential(*layers))
            self.widths[f"dense{b + 1}"] = c
            if b < 2:
                out = int(math.floor(c * reduction))
                transitions.append(Transition(c, out, dropout))
                c = out
        # Assigned in forward order so that named_modules() lists layers as they run.
        self.dense1, self.trans1 = blocks[0], transitions[0]
        self.dense2, self.trans2 = blocks[1], transitions[1]
        self.dense3 = blocks[2]
        self.norm = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c * (final // pool) ** 2, n_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: conv weights N(0, sqrt(2 / (k * k * out_channels))),
        BatchNorm weight 1 and bias 0, linear bias 0 (linear weight keeps PyTorch's default)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, x):
        x = self.dense1(self.conv1(x))
        x = self.dense2(self.trans1(x))
        return self.dense3(self.trans2(x))

    def forward(self, x):
        x = F.relu(self.norm(self.features(x)))
        x = F.avg_pool2d(x, self.pool)
        return self.fc(torch.flatten(x, 1))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items() if k != "architecture")


ARCHITECTURES = {"ccn2022": CCNDenseNet}
