"""Numbers and tables for the bench reports: percentiles, formatted figures,
ratios and Markdown tables, one copy for every script (broker_report.py,
broker_phases.py, broker_soak.py, control_plane_load.py)."""

from __future__ import annotations


def pct(values: list, q: float) -> float:
    """The q-th percentile (nearest rank) of `values` (sorted or not); NaN if there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)  # linear on a list that is sorted already
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt_n(x, digits=0) -> str:
    if isinstance(x, str):
        return x
    if x is None or x != x:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a, b, digits=2) -> str:
    if a is None or b is None or a != a or b != b or not b:
        return "-"
    return f"{a / b:.{digits}f}x"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, columns padded; the first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                   + " |")
    return out
