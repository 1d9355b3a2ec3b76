"""The CCN-2022 study as one sweep: train or load each network x seed, decode every layer,
aggregate over seeds with stated tests, draw Figure 2 and write the report.

Also the verb ``dnnrsa.decode``, which resolves a network, a zoo name or a checkpoint and
the test faces, extracts the layer and decodes it (``dnnrsa.decoding`` itself works on
`Activations` only).
"""

from ._calibration import CALIBRATION_COLUMNS, calibration
from ._epochs import epoch_summary, plot_epochs
from ._figures import plot_calibration, plot_fig2a, plot_fig2b
from ._findings import FINDINGS_COLUMNS, findings, format_finding
from ._paper import PAPER_LAYERS, PAPER_OWN_TASK, PAPER_RESULTS, QUICK_STUDY
from ._report import report, write_outputs
from ._resolve import check_copies, decode, default_stimuli, resolve_model
from ._stats import (
    SeedTest,
    difference_from,
    holm,
    paired_test,
    per_seed,
    summarise,
    welch_differences,
    welch_test,
)
from ._sweep import reproduce

__all__ = [
    "CALIBRATION_COLUMNS",
    "FINDINGS_COLUMNS",
    "PAPER_LAYERS",
    "PAPER_OWN_TASK",
    "PAPER_RESULTS",
    "QUICK_STUDY",
    "SeedTest",
    "calibration",
    "check_copies",
    "decode",
    "default_stimuli",
    "difference_from",
    "epoch_summary",
    "findings",
    "format_finding",
    "holm",
    "paired_test",
    "per_seed",
    "plot_calibration",
    "plot_epochs",
    "plot_fig2a",
    "plot_fig2b",
    "report",
    "reproduce",
    "resolve_model",
    "summarise",
    "welch_differences",
    "welch_test",
    "write_outputs",
]
