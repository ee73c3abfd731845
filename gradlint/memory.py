"""The probe's memory: half of what is available bounds the values its forward may make, and a batch
that does not fit is cut (the report says so).

The backward keeps roughly every value the forward computes, so the probe's peak is about the sum of
the bytes of all node outputs.  torch.export records every value's shape (``node.meta["val"]``), so
for its graphs the sum is known before anything runs; for torch.fx and hooks the forward counts the
bytes as values pass and stops as soon as the sum passes the budget, before memory runs out, so a
probe that fits costs nothing extra.  The budget is half the memory available when the probe starts
(the device's free memory on a GPU).
"""

from __future__ import annotations

import math

import torch
import torch.fx as fx

from .inputs import ProbeInputs

BUDGET_FRACTION = 0.5
MIN_BATCH = 2
MIN_BATCH_POSITIONS = 8       # image-like inputs keep at least this many samples (positions pool statistics)


class OverBudget(Exception):
    """The forward's values passed the budget (bytes so far in ``used``)."""

    def __init__(self, used: float):
        super().__init__(f"{used:.0f} bytes")
        self.used = used


def available(device: torch.device) -> float | None:
    """Bytes that can still be allocated on ``device``, or None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def bytes_of_values(values) -> float:
    total = 0.0
    for v in values:
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, (tuple, list)):
            total += bytes_of_values(v)
    return total


def bytes_from_export(fx_graph: fx.Graph) -> float:
    """Bytes of every value an exported graph computes (its shapes were recorded by export)."""
    return sum(bytes_of_values([n.meta.get("val")]) for n in fx_graph.nodes
               if n.op in ("call_function", "call_module"))


def batch_of(inputs: ProbeInputs) -> int | None:
    """The batch size when every tensor input shares its first dimension (else None: cannot be cut)."""
    sizes = {int(x.shape[0]) for x in inputs.tensors() if x.dim() > 0}
    return sizes.pop() if len(sizes) == 1 else None


def cut(inputs: ProbeInputs, batch: int) -> ProbeInputs:
    return inputs.map(lambda x: x[:batch] if x.dim() > 0 else x)


def describe(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class Fit:
    """One probe's memory budget and the batch cuts it made."""

    def __init__(self, inputs: ProbeInputs, device: torch.device | None):
        free = available(device) if device is not None else None
        self.budget = BUDGET_FRACTION * free if free is not None else None
        self.asked = self.batch = batch_of(inputs)
        image_like = any(x.dim() >= 4 for x in inputs.tensors())
        self.floor = MIN_BATCH_POSITIONS if image_like else MIN_BATCH
        self.why: str | None = None

    def cap(self) -> float | None:
        """The bound on the forward's values, while the batch can still be cut."""
        return self.budget if self.batch is not None and self.batch > self.floor else None

    def cut_before(self, needed: float, inputs: ProbeInputs) -> ProbeInputs | None:
        """The inputs cut to fit when ``needed`` bytes at the current batch are over the budget, else None."""
        if self.cap() is None or needed <= self.budget:
            return None
        return self._cut(math.floor(self.batch * self.budget / needed), needed, "needs", inputs)

    def cut_after(self, used: float, inputs: ProbeInputs) -> ProbeInputs:
        """The inputs cut after a forward passed the budget having made ``used`` bytes (at least halved,
        since the rest of the forward was still to come)."""
        return self._cut(min(self.batch // 2, math.floor(self.batch * self.budget / (2 * used))), used,
                         "passed", inputs)

    def _cut(self, batch: int, size: float, verb: str, inputs: ProbeInputs) -> ProbeInputs:
        before, self.batch = self.batch, max(self.floor, min(batch, self.batch - 1))
        self.why = (f"the forward at batch {before} {verb} {describe(size)}, over the budget of "
                    f"{describe(self.budget)} (half the memory available); batch cut from {self.asked} "
                    f"to {self.batch}")
        return cut(inputs, self.batch)
