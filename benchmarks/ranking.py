"""Rank statistics the benchmark scripts report: average ranks, Spearman's correlation, AUROC."""

from __future__ import annotations

import math


def ranks(values) -> list[float]:
    """Average ranks (ties share their mean rank), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson's on average ranks); NaN under 3 pairs or with no spread."""
    if len(x) < 3:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else float("nan")


def auroc(scores, positive) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    r = ranks(scores)
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    return (sum(a for a, p in zip(r, positive) if p) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
