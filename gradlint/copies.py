"""Copied layers: weights equal, value for value, to an earlier layer's through a different parameter (GL302)."""

from __future__ import annotations

import torch


def mark(weights: list, measures: dict) -> None:
    """Mark the layers (``measures[node].copy_of``) whose weight equals an earlier layer's value for value,
    through a different parameter.

    Weights are grouped by shape and a fingerprint of a few of their values, and compared in full only
    within a group; constant weights (zero-initialised layers) and one parameter used twice (tying)
    are not copies.  ``weights``: (node id, weight, label) in the order the layers ran; emptied.
    """
    seen: dict[tuple, list[tuple[torch.Tensor, str]]] = {}
    for node_id, w, label in weights:
        if w.numel() == 0:
            continue
        w = w.detach()
        flat = w.reshape(-1)
        sample = flat[:: max(1, flat.numel() // 16)][:16]
        if bool((sample == flat[0]).all()) and bool((flat == flat[0]).all()):
            continue  # a constant weight (zero-initialised): not a copy of anything
        key = (tuple(w.shape), w.dtype, w.device, tuple(sample.tolist()))
        group = seen.setdefault(key, [])
        for other, other_label in group:
            if other is w or other.data_ptr() == w.data_ptr():
                break  # the same parameter again
            if torch.equal(other, w):
                measures[node_id].copy_of = other_label
                break
        else:
            group.append((w, label))
    weights.clear()
