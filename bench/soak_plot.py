"""The soak benchmark's plot: the four series one above the other, each with its fitted line
(matplotlib, Agg backend: no display needed; `pip install -e '.[bench]'`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.soak_series import Fit, Sample


def plot(samples: Sequence[Sample], fits: Sequence[Fit], path: Path, title: str) -> None:
    """Write a PNG of one subplot per fitted series against minutes into the soak: the
    samples, the least-squares line over the fitted window, and where that window starts."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(len(fits), 1, sharex=True, figsize=(9, 2.4 * len(fits)))
    for ax, f in zip(axes, fits, strict=True):
        points = [
            (s.t_s / 60, value * f.series.scale)
            for s in samples
            if (value := getattr(s, f.series.field)) is not None
        ]
        ax.plot([x for x, _ in points], [y for _, y in points], marker=".", linewidth=1)
        if f.slope_per_min is not None and f.intercept is not None and points:
            xs = [f.since_s / 60, points[-1][0]]
            ax.plot(xs, [f.intercept + f.slope_per_min * x for x in xs], linestyle="--", color="tab:red")
        ax.axvline(f.since_s / 60, color="grey", linewidth=0.8, linestyle=":")
        slope = "-" if f.slope_per_min is None else f"{f.slope_per_min:+,.2f} {f.series.unit}/min"
        ax.set_title(f"{f.series.label}: {slope}, {f.verdict}", fontsize=10, loc="left")
        ax.set_ylabel(f.series.unit)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes into the soak (dotted: start of the fitted window)")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
