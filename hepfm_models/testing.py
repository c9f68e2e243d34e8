"""Random graph batches for tests and benchmarks (not physics)."""

from __future__ import annotations

import math

import torch

from hepfm_data.batches.graph import ENERGY, ETA, PHI, PT, TYPE, GraphBatch


def random_nodes(n_node: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[sum(n_node), 7] node features with plausible ranges: pT 20-500 GeV, |eta| < 2.5, types 0-4."""
    n = int(n_node.sum())
    nodes = torch.zeros(n, 7)
    nodes[:, PT] = 20 + 480 * torch.rand(n, generator=generator) ** 3
    nodes[:, ETA] = 5 * torch.rand(n, generator=generator) - 2.5
    nodes[:, PHI] = 2 * math.pi * torch.rand(n, generator=generator) - math.pi
    nodes[:, ENERGY] = nodes[:, PT] * torch.cosh(nodes[:, ETA])
    nodes[:, 4] = (torch.rand(n, generator=generator) < 0.3).float()
    nodes[:, 5] = torch.randint(-1, 2, (n,), generator=generator).float()
    nodes[:, TYPE] = torch.randint(0, 5, (n,), generator=generator).float()
    return nodes


def random_batch(n_events: int, seed: int = 0, n_classes: int = 2, min_nodes: int = 2, max_nodes: int = 14,
                 n_multilabels: int | None = None, learnable: bool = False) -> GraphBatch:
    """A CPU GraphBatch of ``n_events`` random events.

    With ``learnable`` the label is 1 when the event's scalar sum of pT exceeds
    1050 GeV (about half the events; a rule sum aggregation can learn), otherwise
    labels are random in [0, n_classes).
    """
    gen = torch.Generator().manual_seed(seed)
    n_node = torch.randint(min_nodes, max_nodes + 1, (n_events,), generator=gen)
    nodes = random_nodes(n_node, gen)
    if learnable:
        graph = torch.repeat_interleave(torch.arange(n_events), n_node)
        ht = torch.zeros(n_events).index_add_(0, graph, nodes[:, PT])
        labels = (ht > 1050).long()
    else:
        labels = torch.randint(0, n_classes, (n_events,), generator=gen)
    multi = None
    if n_multilabels:
        multi = (torch.rand(n_events, n_multilabels, generator=gen) < 0.2).float()
        multi[:, :5] = torch.randint(0, 3, (n_events, 5), generator=gen).float()
    return GraphBatch.from_nodes(nodes, n_node, labels, multilabels=multi)
