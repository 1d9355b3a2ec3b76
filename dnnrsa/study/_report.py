"""The files a study run writes: tables, Figure 2 and the Markdown report, whose verdicts
come from stated tests across seeds (see ``_findings.findings``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ._epochs import epoch_summary, epochs_section, plot_epochs
from ._figures import plot_calibration, plot_fig2a, plot_fig2b
from ._findings import findings, format_finding
from ._paper import PAPER_RESULTS
from ._stats import summarise, welch_differences

__all__ = ["report", "write_outputs"]


def write_outputs(results: pd.DataFrame, out: Path, *, layers, targets, context: dict) -> None:
    """results.csv, summary.csv, findings.csv, fig2a.png, fig2b.png and report.md in
    ``out``, each written under a temporary name and renamed, so a crash leaves no
    half-written file."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    tested = welch_differences(results)
    table = findings(results, layers)
    trajectories = context.get("trajectories")
    # every row, kept epochs included; the analyses below use the final networks
    _write_csv(results if trajectories is None else trajectories, out / "results.csv")
    vs = tested[["network", "layer", "target", "difference", "ci_low", "ci_high", "p"]]
    vs = vs.rename(columns={"difference": "minus_untrained", "ci_low": "minus_untrained_ci_low",
                            "ci_high": "minus_untrained_ci_high", "p": "minus_untrained_p"})
    both = summary.merge(vs, on=["network", "layer", "target"], how="left")
    _write_csv(both, out / "summary.csv")
    _write_csv(table, out / "findings.csv")
    if context.get("calibration") is not None:
        _write_csv(context["calibration"], out / "calibration.csv")
    label = f"{context['data']} data, {len(context['seeds'])} seed(s), readout {context['readout']}"
    figures = [("fig2a.png", plot_fig2a(summary, layers, targets, title=label)),
               ("fig2b.png", plot_fig2b(tested, layers, targets, title=label,
                                        pixels=summary))]
    if context.get("calibration") is not None:
        figures.append(("fig_calibration.png", plot_calibration(context["calibration"])))
    if trajectories is not None:
        during = epoch_summary(trajectories)
        _write_csv(during, out / "epochs.csv")
        figures.append(("fig_epochs.png", plot_epochs(
            during, summary[summary.network == "untrained"], layers, targets, title=label)))
        context = dict(context, during=during)
    for name, fig in figures:
        tmp = out / (name + ".partial.png")
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        os.replace(tmp, out / name)
    tmp = out / "report.md.partial"
    tmp.write_text(report(summary, table, layers, context))
    os.replace(tmp, out / "report.md")


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _pct(v) -> str:
    return "n/a" if pd.isna(v) else f"{100 * v:.1f}"


def _cell(network: str, mean, sem) -> str:
    """Mean +- SEM over seeds; "+- n/a" where the SEM is undefined (one seed); the pixel
    control, a single run without seeds, shows its accuracy alone."""
    if network == "pixels":
        return _pct(mean)
    return f"{_pct(mean)} +- {_pct(sem)}"


#: Problems listed per data set in the report; the rest are counted (all are in the log).
_LISTED = 20
_LISTED_WARNING = 5


def _data_section(context: dict) -> list[str]:
    """The local copies a ``data="paper"`` run read and what was wrong with each (the
    ``check_copies`` records in ``context["copies"]``)."""
    copies = context.get("copies")
    if not copies:
        return []
    skip = context.get("on_problem") == "skip"
    lines = [
        "",
        "## Data",
        "",
        "Local copies checked against data_manifests/ before the run "
        "(`dnnrsa.datasets.check_dataset(name, path, verify=False)`: layout, file names, "
        "counts); the loaders compared checksums and decoded each image as they loaded it"
        + (" and logged what they skipped as warnings." if skip else "."),
        "",
    ]
    for c in copies:
        probs = c["problems"]
        if not probs:
            lines.append(f"- **{c['name']}** at `{c['path']}`: matches its manifest.")
        else:
            lines.append(f"- **{c['name']}** at `{c['path']}`: {len(probs)} problem(s)"
                         + (", skipped (on_problem='skip'): the run used the usable part"
                            if skip else "") + ":")
            lines += [f"    - {m}" for m in probs[:_LISTED]]
            if len(probs) > _LISTED:
                lines.append(f"    - ... and {len(probs) - _LISTED} more (all in the log; "
                             f"`dnnrsa data check {c['name']} {c['path']}`)")
        lines += [f"    - note: {n}" for n in c["notes"]]
    seen = context.get("loader_warnings") or []
    if seen:
        lines += ["", "Warnings while loading the training sets and the test faces (networks "
                      "already trained were loaded, not retrained: their data was not read):",
                  ""]
        for message in seen:
            first, *rest = message.splitlines()
            lines.append(f"- {first}")
            lines += [f"  {ln}" for ln in rest[:_LISTED_WARNING]]
            if len(rest) > _LISTED_WARNING:
                lines.append(f"  - ... and {len(rest) - _LISTED_WARNING} more lines (in the log)")
    if skip and any(c["problems"] for c in copies):
        lines += ["", "These results come from incomplete or unverified copies: they are not "
                      "the paper's data. The networks trained here are a recipe of their own "
                      "(on_problem='skip') and are never loaded as networks of a sound copy."]
    return lines


def _calibration_section(calib: pd.DataFrame | None) -> list[str]:
    """How hard the test faces are without any training, beside KDEF's figure."""
    if calib is None or not len(calib):
        return []
    lines = [
        "",
        "## How hard is this test set?",
        "",
        "Identity read out of the test faces with no trained network, leave-one-viewpoint-"
        "out unless said otherwise (linear readouts; `dnnrsa.study.calibration` measures "
        "the full set of figures). A test set as hard as KDEF puts an untrained conv1 near "
        "the paper's 7.9% (5.5x chance with 70 identities) and brightness alone near chance; above the target "
        "range, identity readouts sit high for every network for reasons no network learnt.",
        "",
        "| measure | ours | x chance | KDEF (paper) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in calib.iterrows():
        ours = "n/a" if not np.isfinite(r["value"]) else _pct(r["value"])
        x = "n/a" if not np.isfinite(r["x_chance"]) else f"{r['x_chance']:.1f}x"
        # KDEF has 70 identities and 7 expressions: its chance, not this set's
        kdef_chance = 1 / 7 if r["measure"].startswith("quick_expression") else 1 / 70
        kdef = "" if not np.isfinite(r["kdef"]) else (
            f"{_pct(r['kdef'])} ({r['kdef'] / kdef_chance:.1f}x)")
        met = "n/a" if pd.isna(r["passes"]) else ("yes" if r["passes"] else "**no**")
        lines.append(f"| {r['measure']} | {ours} | {x} | {kdef} | {r['target']} | {met} |")
    notes = [f"{r['measure']}: {r['note']}" for _, r in calib.iterrows() if r["note"]]
    lines += ["", *[f"- {n}" for n in notes]]
    return lines


def report(summary: pd.DataFrame, table: pd.DataFrame, layers, context: dict) -> str:
    """The Markdown report: our table beside the paper's, and each finding decided by its
    test."""
    n_seeds = len(context["seeds"])
    lines = [
        "# dnnrsa reproduction of Schwartz et al. (2022), CCN",
        "",
        f"dnnrsa {__version__}; data: **{context['data']}**"
        f"{' (quick settings)' if context['quick'] else ''}; test stimuli: "
        f"{context['stimuli']} ({context['n_stimuli']} images); seeds: {context['seeds']}; "
        f"readout: {context['readout']} ({context['readout_epochs']} epochs); "
        f"device: {context['device']}; {context['seconds']:.0f} s.",
        "",
        "Accuracy (%) of a readout trained on two viewpoints and tested on the third, "
        "mean over the 3 folds, then mean +- SEM over seeds. Paper: KDEF, 10 seeds.",
        "",
    ]
    header = "| network | readout | " + " | ".join(
        f"{layer} ours | {layer} paper" for layer in layers) + " | chance |"
    lines += [header, "|" + "---|" * (3 + 2 * len(layers))]
    for (net, target), sub in summary.groupby(["network", "target"], sort=False):
        s = sub.set_index("layer")
        paper = PAPER_RESULTS[(PAPER_RESULTS.network == net) & (PAPER_RESULTS.target == target)]
        cells = []
        for layer in layers:
            if layer in s.index:
                ours = _cell(net, s.loc[layer, "mean"], s.loc[layer, "sem"])
            else:
                ours = _pct(s["mean"].iloc[0]) if net == "pixels" else ""
            ref = paper[layer].iloc[0] if len(paper) and layer in paper else ""
            cells.append(f"{ours} | {ref}")
        lines.append(f"| {net} | {target} | " + " | ".join(cells)
                     + f" | {_pct(sub['chance'].iloc[0])} |")
    lines += _data_section(context)
    lines += _calibration_section(context.get("calibration"))
    if context.get("during") is not None:
        lines += epochs_section(context["during"])
    lines += [
        "",
        "## The paper's findings, tested on this run",
        "",
        "Trained vs untrained: Welch's t-test across network seeds (independent "
        "initialisations). Two layers of one network: paired t-test across seeds. Two-sided, "
        "95% CIs; p-values Holm-adjusted over the findings tested. A finding **holds** when "
        "the adjusted p < 0.05 and the difference is positive, is **reversed** when it is "
        "negative, and is **inconclusive** otherwise or with fewer than 3 seeds per group.",
        "",
    ]
    lines += [f"- {format_finding(row)}" for _, row in table.iterrows()]
    if n_seeds < 3:
        lines += ["", f"With {n_seeds} seed(s) no finding can be decided; run more seeds "
                      "(`--seeds 10`, the paper's number)."]
    lines += [
        "",
        "## Notes",
        "",
        "- Seeds of different networks are independent initialisations. Figure 2A's bars "
        "are 95% t intervals of the mean across seeds; Figure 2B's are Welch's 95% "
        "intervals of the trained-minus-untrained difference (summary.csv: "
        "minus_untrained, its interval and its unadjusted p). An SEM or interval that is "
        "undefined (one seed) is shown as n/a and drawn without an error bar.",
        "- The pixel control is one linear layer on pixel values (standardised with the "
        "training fold's mean and SD), same folds; it does not depend on the network, so it "
        "has no seeds.",
        "- Synthetic data are not KDEF: compare patterns, not values. How hard identity is "
        "on these faces before any training is in 'How hard is this test set?' above (and "
        "fig_calibration.png); chance also differs when the set has another number of "
        "identities.",
        *(["- Quick settings: narrow networks (growth 8, 32 px), Adam, 10 epochs, no dropout, "
           f"{n_seeds} seeds, {context['readout_epochs']}-epoch readouts; see "
           "dnnrsa.zoo.QUICK. Not the paper's protocol."]
          if context["quick"] else []),
        "",
        "Files: results.csv (one row per fold), summary.csv, findings.csv (one row per "
        "finding, with its test), calibration.csv, fig2a.png, fig2b.png, fig_calibration.png"
        + ("; epochs.csv and fig_epochs.png (the kept epochs; results.csv has their rows, "
           "with an epoch column)." if context.get("during") is not None else "."),
    ]
    return "\n".join(lines) + "\n"
