"""The capture tiers as objects, and the one loop that tries them.

A tier captures a model's graph (or, for the hooks tier, records it while the model runs), says what
its graph's placeholders take, what it knows of the memory a run needs before running, how to capture
again at a smaller batch, and runs under an observer (the protocol of ``capture.interpret``).  ``run``
tries the tiers in order (``vocabulary.TIERS``) and cuts the batch when a run passes the memory budget.
Nothing outside ``capture/`` names a tier: a new tier is its module, ``capture/<name>.py``, with a
``Tier`` subclass, and its entry (name and label) in ``vocabulary.TIERS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import memory
from ..errors import ProbeError, one_line
from ..inputs import ProbeInputs
from ..vocabulary import EXPORT, TIERS
from .base import Graph, InputFacts
from .interpret import Interpreter


class Tier:
    """One way of capturing a model."""

    name: str
    runs_a_graph = True        # a program the interpreter runs (False: the graph is recorded as the model runs)
    sees_structure = True      # residual structure and functional ops are seen (False: a chain of modules)

    def capture(self, model: nn.Module, inputs: ProbeInputs, facts: InputFacts, notes: list[str]) -> Graph | None:
        raise NotImplementedError

    def arguments(self, model: nn.Module, inputs: ProbeInputs) -> tuple:
        """What the graph's placeholders take, in order."""
        raise NotImplementedError

    def needs(self, graph: Graph) -> float | None:
        """Bytes a run will make, when the capture recorded every value's shape; None when unknown."""
        return None

    def recapture(self, model: nn.Module, inputs: ProbeInputs, facts: InputFacts, graph: Graph) -> Graph:
        """The graph for smaller inputs (a batch cut)."""
        return graph

    def run(self, model: nn.Module, graph: Graph | None, inputs: ProbeInputs, facts: InputFacts, observer,
            note: str | None) -> tuple[Graph, object]:
        """(the graph, the model's output) of one run under ``observer``."""
        result = Interpreter(graph, observer, aten=self.name == EXPORT, model=model).run(*self.arguments(model, inputs))
        return graph, result

    def failed(self, exc: BaseException, running: bool) -> str:
        """The note saying why this tier could not capture (``running`` False) or run the model."""
        what = "could not run the model" if running else "could not capture the model"
        return f"{TIERS[self.name]} {what} ({one_line(exc)})"


def tier_classes() -> dict[str, type[Tier]]:
    """Every tier's class, in the order they are tried (``vocabulary.TIERS``): the ``Tier`` subclass named
    for it in its own module, ``capture/<name>.py``."""
    for name in TIERS:
        importlib.import_module(f"{__package__}.{name}")
    found = {cls.name: cls for cls in Tier.__subclasses__()}
    return {name: found[name] for name in TIERS}


def tier_of(graph: Graph) -> Tier:
    return tier_classes()[graph.tier]()


def at_batch(model: nn.Module, inputs: ProbeInputs, facts: InputFacts, graph: Graph) -> Graph | None:
    """``graph``, captured from ``model``, for inputs of another batch size: what its tier recaptures (an
    fx graph holds no batch size; an exported one is exported again); None when that fails."""
    try:
        return tier_of(graph).recapture(model, inputs, facts, graph)
    except Exception:  # noqa: BLE001 - the caller captures from scratch
        return None


@dataclass
class Captured:
    """One successful run: the observer that watched it, the model's output, the graph, and the inputs it
    ran on (smaller than asked when the memory budget cut the batch)."""

    observer: object
    result: object
    graph: Graph
    inputs: ProbeInputs


def run(model: nn.Module, inputs: ProbeInputs, facts: InputFacts, observer_for: Callable[[Graph | None, ProbeInputs], object],
        fit: memory.Fit, seed: int, graph: Graph | None = None) -> Captured:
    """Run ``model`` under the first tier that captures and runs it, each run watched by a fresh
    ``observer_for(graph)``; a run that passes the memory budget is repeated at a smaller batch.
    ``graph``: one captured before (a what-if copy's), run again instead of capturing; a hooks graph is
    recorded again.  Raises ``ProbeError`` when no tier can run the model."""
    notes: list[str] = []
    tiers = [cls() for cls in tier_classes().values()]
    if graph is not None:  # the given graph, then the tier that records as the model runs
        tiers = [tier_of(graph)] + [t for t in tiers if not t.runs_a_graph and t.name != graph.tier]
    tried: set[str] = set()
    for tier in tiers:
        if tier.name in tried:
            continue  # already captured, in place of an earlier tier
        try:
            g = graph if graph is not None and tier.runs_a_graph else tier.capture(model, inputs, facts, notes)
            if g is not None:
                tried.add(g.tier)
                tier = tier_of(g)  # torch.fx may hand over to torch.export (see_inside_wrapped_functions)
                needed = tier.needs(g)
                smaller = fit.cut_before(needed, inputs) if needed is not None else None
                if smaller is not None:
                    inputs, g = smaller, tier.recapture(model, smaller, facts, g)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: the next tier
            notes.append(tier.failed(exc, running=False))
            continue
        while True:
            observer = observer_for(g, inputs)
            torch.manual_seed(seed)
            try:
                g_run, result = tier.run(model, g, inputs, facts, observer, "; ".join(notes) or None)
            except memory.OverBudget as over:
                inputs = fit.cut_after(over.used, inputs)
                if g is not None:
                    g = tier.recapture(model, inputs, facts, g)
                continue
            except Exception as exc:  # noqa: BLE001
                if not tier.runs_a_graph:
                    raise ProbeError(f"forward pass failed: {one_line(exc)}") from exc
                notes.append(tier.failed(exc, running=True))
                break
            g_run.note = "; ".join(notes) or None
            return Captured(observer, result, g_run, inputs)
    raise ProbeError("forward pass failed: " + ("; ".join(notes) or "no capture tier could run the model"))
