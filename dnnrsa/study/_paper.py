"""What the CCN-2022 paper reports, and the settings of the quick study."""

from __future__ import annotations

import pandas as pd

from ..zoo import PAPER_LAYERS

__all__ = ["PAPER_LAYERS", "PAPER_OWN_TASK", "PAPER_RESULTS", "QUICK_STUDY"]

#: Held-out-viewpoint accuracies (%) on KDEF reported by the study (mean over 10 seeds).
PAPER_RESULTS = pd.DataFrame(
    [
        ("expression", "identity", 9.5, 6.3, 14.8, 20.2),
        ("identity", "expression", 17.6, 17.1, 21.5, 42.1),
        ("untrained", "expression", 16.5, 16.2, 15.5, 16.5),
        ("untrained", "identity", 7.9, 7.1, 13.6, 6.1),
        ("scene", "expression", 15.9, 16.0, 23.5, 33.0),
        ("scene", "identity", 9.5, 7.8, 17.3, 29.6),
    ],
    columns=["network", "target", *PAPER_LAYERS],
)

#: Own-task accuracies (%) on KDEF the paper reports for the top layer's readout.
PAPER_OWN_TASK = {("expression", "expression"): 53.4, ("identity", "identity"): 48.35}

#: Settings of ``reproduce(quick=True)``: a small face set (both sessions, so that a
#: session's studio conditions cannot stand in for identity), short readouts, and five
#: seeds per network, enough for the report's tests to decide a clear difference.
QUICK_STUDY = dict(seeds=5, n_identities=20, sessions=("A", "B"), readout_epochs=15)

#: The paper's number of network seeds, the default of a full run.
PAPER_SEEDS = 10
