"""What a look at a local copy found: :class:`Findings` while a loader or a check reads it,
:class:`DatasetReport` for the human-readable result of
:func:`~dnnrsa.datasets.check_dataset`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._utils import logger

__all__ = ["ON_PROBLEM", "DatasetReport", "Findings", "counts_summary"]

#: What a loader may do with the problems it finds (its ``on_problem`` option).
ON_PROBLEM = ("raise", "skip")

# A loader's error lists at most this many problems; check_dataset() lists them all.
_MAX_LISTED = 500

# Malformed lines listed per annotation or CSV file; the rest are counted.
_MAX_BAD_LINES = 50

_SKIP_HINT = "Pass on_problem='skip' to load the images that are fine anyway."


class Findings:
    """What a scan of data set ``name`` found wrong (``problems``: the copy is not usable
    as it is) and what it merely noticed (``notes``).

    ``on_problem`` is the loader's option (``"raise"`` or ``"skip"``); a check passes
    None, which only collects.
    """

    def __init__(self, name: str, on_problem: str | None = None):
        self.name = name
        self.on_problem = on_problem
        self.problems: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, kind: str, message: str) -> None:
        """Record a problem; ``kind`` is one of missing, unreadable, bad_row, stray,
        misplaced, checksum, count, layout."""
        self.problems.append((kind, message))

    def add_bad_lines(self, fname: str, messages: Sequence[str], noun: str = "lines") -> None:
        """Record the malformed lines of one file, the first 50 by name and the rest as a
        count, so a wholly wrong file does not bury every other problem."""
        for msg in messages[:_MAX_BAD_LINES]:
            self.add("bad_row", msg)
        if len(messages) > _MAX_BAD_LINES:
            self.add("bad_row", f"... and {len(messages) - _MAX_BAD_LINES} more bad {noun} in "
                                f"{fname}")

    def note(self, message: str) -> None:
        self.notes.append(message)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def messages(self) -> list[str]:
        return [m for _, m in self.problems]

    def raise_if_any(self, where: Path | str, hint: str = "") -> None:
        """Raise one error listing every problem: FileNotFoundError when all are missing
        files, else ValueError. ``hint`` ends the message."""
        if not self.problems:
            return
        name = self.name
        kinds = {k for k, _ in self.problems}
        msgs = self.messages()
        listed = msgs[:_MAX_LISTED]
        if len(msgs) > _MAX_LISTED:
            listed.append(f"... and {len(msgs) - _MAX_LISTED} more")
        text = (
            f"The {name} data set at {where} is not usable as it is: "
            f"{len(msgs)} problem(s):\n  - " + "\n  - ".join(listed) + "\n"
            f"See data_manifests/{name}.json for how to obtain it and the layout expected; "
            f"dnnrsa.datasets.check_dataset({name!r}, {str(where)!r}) gives a full report."
            + (f" {hint}" if hint else "")
        )
        raise (FileNotFoundError if kinds == {"missing"} else ValueError)(text)

    def checkpoint(self, where: Path | str) -> None:
        """Stop here with every problem found so far when loading with
        ``on_problem="raise"``; carry on otherwise."""
        if self.on_problem == "raise":
            self.raise_if_any(where, _SKIP_HINT)

    def settle(self, where: Path | str) -> None:
        """End of loading: raise every problem (``"raise"``), or log them as one warning
        (``"skip"``); then log the notes."""
        self.checkpoint(where)
        if self.problems:
            msgs = self.messages()
            logger.warning("%s: skipping %d problem(s) in %s (on_problem='skip'):\n  - %s",
                           self.name, len(msgs), where, "\n  - ".join(msgs))
        for note in self.notes:
            logger.warning("%s: %s", self.name, note)


def counts_summary(groups: Sequence, classes: Sequence, class_order: Sequence,
                   group_order: Sequence) -> dict[str, dict[str, int]]:
    """{group: {class: count}} in manifest order, zero counts kept."""
    table = pd.crosstab(pd.Categorical(list(classes), categories=list(class_order)),
                        pd.Categorical(list(groups), categories=list(group_order)),
                        dropna=False)
    return {str(g): {str(c): int(table.loc[c, g]) for c in class_order} for g in group_order}


@dataclass
class DatasetReport:
    """The result of :func:`~dnnrsa.datasets.check_dataset`.

    Attributes
    ----------
    name : str
        Data-set name.
    path : str
        The folder that was checked.
    problems : list of str
        Everything that makes the copy unusable as it is (missing or stray files,
        undecodable images, bad CSV rows, wrong checksums, wrong counts). Empty when usable.
    summary : dict of {str: dict of {str: int}}
        Counts found, per group (split, usage or viewpoint) and class.
    notes : list of str
        Observations that do not stop the loaders (ignored folders, unusual image sizes,
        checks that were skipped).
    verified : bool
        Whether checksums were compared and every image decoded (``verify=True``).
    """

    name: str
    path: str
    problems: list[str] = field(default_factory=list)
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verified: bool = True

    @property
    def ok(self) -> bool:
        """True when no problem was found: the loaders will accept this copy."""
        return not self.problems

    def summary_table(self) -> pd.DataFrame:
        """:attr:`summary` as a table: one row per class, one column per group."""
        if not self.summary:
            return pd.DataFrame()
        table = pd.DataFrame(self.summary)
        return table.fillna(0).astype(int)

    def __str__(self) -> str:
        status = "usable" if self.ok else f"NOT usable, {len(self.problems)} problem(s)"
        lines = [f"{self.name} at {self.path}: {status}"
                 + ("" if self.verified else " (checksums and decoding not checked: verify=False)")]
        table = self.summary_table()
        if not table.empty:
            lines.append("counts found:")
            lines += ["  " + ln for ln in table.to_string().splitlines()]
        if self.problems:
            lines.append("problems:")
            lines += [f"  - {p}" for p in self.problems]
        if self.notes:
            lines.append("notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"DatasetReport(name={self.name!r}, ok={self.ok}, "
                f"problems={len(self.problems)}, path={self.path!r})")
