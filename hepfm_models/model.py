"""The graph network of SPEC §5 (Ho, Roberts, Han, Wang, arXiv:2412.10665), in one file.

Encode -> process -> decode on a :class:`~hepfm_data.batches.graph.GraphBatch`::

    x = MLP_node(norm(nodes))       [N, 64]   node encoder
    e = MLP_edge(norm(edges))       [E, 64]   edge encoder
    u = MLP_glob(norm(globals))     [B, 64]   global encoder
    repeat n_steps (=4) times, the SAME block weights each time:
        e_ij += MLP_e(x_i, x_j, e_ij, u)         edge update, i = sender, j = receiver
        x_i  += MLP_x(x_i, sum_j e'_ij, u)       node update (sum over the edges i -> j)
        u    += MLP_u(sum_i x'_i, sum_ij e'_ij, u) global update (sums within each event)
    z = MLP_dec(u)                  [B, 64]   the latent used by CKA (``embed``)
    logits = head(z)                [B, n_out] final Linear

Every MLP is ``Linear-ReLU-Linear-ReLU-Linear-ReLU-Linear`` (4 layers, width 64)
followed by ``LayerNorm``. The updates are *residual* (``+=``; ``residual=False`` gives
the literal ``=`` of SPEC §5): without them, four iterations of LayerNorm'd MLPs on
sums let almost no gradient reach the encoders (measured: 1e-5..1e-7 of the decoder's
gradient norm) and the network stays at the class-prior loss on generated events.
Sums are ``index_add_`` over the edge list; there is no DGL/PyG dependency and no dense padding. Padding events of a fixed-shape
batch (``graph_mask`` False) own only padding nodes and edges, so they never
leak into real events; the losses drop them.

Input normalisation (:func:`node_inputs`, :func:`edge_inputs`, :func:`global_inputs`):

* nodes [N, 12]: log(1 + pT/GeV) - 4, eta, sin(phi), cos(phi), log(1 + E/GeV) - 4.5,
  btag, charge, one-hot(type) over ``n_types`` (jet, electron, muon, photon, MET).
  pT and E span 4 decades, so they enter as logs, centred on typical values (~55,
  ~90 GeV: an uncentred offset shared by every node swamps the type and kinematics
  after the LayerNorms); phi enters through sin/cos so the wrap at +-pi is no discontinuity.
* edges [E, 3]: deta, dphi (rad, wrapped), dR - 2.
* globals [B, 1]: log(1 + N nodes) - 1.8.

The first Linear of each block MLP is evaluated *split* (``W [a, b, c, d] =
W_a a + W_b b + ...``): the node and global terms are projected once per node /
event and then gathered, instead of gathering 64-d vectors onto every edge,
concatenating and multiplying. :func:`reference_forward` is the plain
gather-concatenate edge-list version with the same parameters; the tests check
they agree and ``benchmarks/train.py`` times both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hepfm_data.batches.graph import BTAG, CHARGE, ENERGY, ETA, PHI, PT, TYPE, GraphBatch

N_NODE_INPUTS_BASE = 7  # log pt, eta, sin phi, cos phi, log E, btag, charge
#: centring constants of the input normalisation (typical values; documented above)
LOG_PT_CENTER, LOG_E_CENTER, LOG_N_CENTER, DR_CENTER = 4.0, 4.5, 1.8, 2.0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; saved as JSON beside every checkpoint."""

    n_out: int = 12  # final Linear outputs: classes (multiclass) or labels (multilabel)
    width: int = 64  # latent width of every MLP
    depth: int = 4  # Linear layers per MLP
    n_steps: int = 4  # graph-block iterations
    shared_block: bool = True  # SPEC §5: the same block weights at every step
    n_types: int = 5  # object types for the one-hot (catalog graph.object_types)
    n_edge_features: int = 3
    n_global_features: int = 1
    residual: bool = True  # x += MLP(...) updates (False: the literal x = MLP(...))

    kind = "graph"  # the checkpoint's model kind (hepfm_models.checkpoint.MODEL_KINDS)

    @property
    def n_node_inputs(self) -> int:
        return N_NODE_INPUTS_BASE + self.n_types

    def build(self) -> GraphNet:
        return GraphNet(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return config_from_dict(cls, d)


def config_from_dict(cls: type, d: dict):
    """``cls(**d)`` for a config dataclass; ValueError naming unknown fields."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**d)


# ----------------------------------------------------------------------------- inputs
def node_inputs(nodes: torch.Tensor, n_types: int) -> torch.Tensor:
    """[N, 7] raw node features (GeV, rad) -> [N, 7 + n_types] network inputs."""
    pt, eta, phi, energy = nodes[:, PT], nodes[:, ETA], nodes[:, PHI], nodes[:, ENERGY]
    kind = nodes[:, TYPE].round().long().clamp(0, n_types - 1)
    return torch.cat([
        torch.stack([torch.log1p(pt.clamp_min(0)) - LOG_PT_CENTER, eta, torch.sin(phi), torch.cos(phi),
                     torch.log1p(energy.clamp_min(0)) - LOG_E_CENTER, nodes[:, BTAG], nodes[:, CHARGE]], dim=1),
        F.one_hot(kind, n_types).to(nodes.dtype),
    ], dim=1)


def edge_inputs(edges: torch.Tensor) -> torch.Tensor:
    """[E, 3] (deta, dphi, dR) -> [E, 3] (deta, dphi, dR - 2)."""
    return edges - edges.new_tensor([0.0, 0.0, DR_CENTER])


def global_inputs(globals_: torch.Tensor) -> torch.Tensor:
    """[B, 1] number of nodes -> [B, 1] log(1 + N) - 1.8."""
    return torch.log1p(globals_.clamp_min(0)) - LOG_N_CENTER


# ----------------------------------------------------------------------------- layers
class MLP(nn.Module):
    """``depth`` Linear layers of ``width`` with ReLU between them, then LayerNorm.

    ``in_parts`` lists the widths of the concatenated inputs; :meth:`forward`
    takes one ``(tensor, index)`` pair per part and evaluates the first layer
    split: ``sum_k (x_k @ W_k^T)[index_k] + b`` (``index`` None = no gather).
    """

    def __init__(self, in_parts: tuple[int, ...], width: int = 64, depth: int = 4):
        super().__init__()
        self.in_parts = tuple(in_parts)
        self.layers = nn.ModuleList([nn.Linear(sum(self.in_parts), width)]
                                    + [nn.Linear(width, width) for _ in range(depth - 1)])
        self.norm = nn.LayerNorm(width)

    def first_layer(self, parts: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
        """``sum_k (x_k @ W_k^T)[index_k] + b``: the first part without a gather starts the sum as one
        ``addmm`` (bias fused), the others are added in place (no temporaries per part: ~10% of a CPU
        training step, BENCHMARKS.md "Training")."""
        weights = torch.split(self.layers[0].weight, self.in_parts, dim=1)
        bias = self.layers[0].bias
        first = next((k for k, (_, index) in enumerate(parts) if index is None), None)
        out = None if first is None else torch.addmm(bias, parts[first][0], weights[first].t())
        for k, ((x, index), w) in enumerate(zip(parts, weights)):
            if k == first:
                continue
            y = x @ w.t()
            if index is not None:
                y = y.index_select(0, index)
            out = y + bias if out is None else out.add_(y)
        return out

    def rest(self, h: torch.Tensor) -> torch.Tensor:
        # in-place ReLU: the Linear before it does not keep its output for the backward pass
        for layer in self.layers[1:]:
            h = layer(torch.relu_(h))
        return self.norm(h)

    def forward(self, *parts: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        if len(parts) != len(self.in_parts):
            raise ValueError(f"MLP expects {len(self.in_parts)} input parts, got {len(parts)}")
        return self.rest(self.first_layer(list(parts)))

    def forward_concat(self, x: torch.Tensor) -> torch.Tensor:
        """Plain version: ``x`` is the already gathered and concatenated input."""
        return self.rest(self.layers[0](x))


class GraphBlock(nn.Module):
    """One edge -> node -> global update (SPEC §5), sum aggregation."""

    def __init__(self, width: int = 64, depth: int = 4, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.edge = MLP((width, width, width, width), width, depth)  # x_i, x_j, e_ij, u
        self.node = MLP((width, width, width), width, depth)  # x_i, sum_j e_ij, u
        self.glob = MLP((width, width, width), width, depth)  # sum_i x_i, sum_ij e_ij, u

    def forward(self, x, e, u, g: GraphBatch, edge_graph: torch.Tensor):
        e_new = self.edge((x, g.senders), (x, g.receivers), (e, None), (u, edge_graph))
        e = e + e_new if self.residual else e_new
        e_at_node = x.new_zeros(x.shape[0], e.shape[1]).index_add_(0, g.senders, e)
        x_new = self.node((x, None), (e_at_node, None), (u, g.node_graph))
        x = x + x_new if self.residual else x_new
        x_sum = u.new_zeros(u.shape[0], x.shape[1]).index_add_(0, g.node_graph, x)
        e_sum = u.new_zeros(u.shape[0], e.shape[1]).index_add_(0, edge_graph, e)
        u_new = self.glob((x_sum, None), (e_sum, None), (u, None))
        u = u + u_new if self.residual else u_new
        return x, e, u


class GraphNet(nn.Module):
    """The SPEC §5 network. ``forward(batch) -> [B, n_out]`` logits; ``embed(batch) -> [B, 64]``."""

    def __init__(self, config: ModelConfig | None = None, **overrides):
        super().__init__()
        config = dataclasses.replace(config or ModelConfig(), **overrides)
        self.config = config
        w, d = config.width, config.depth
        self.node_encoder = MLP((config.n_node_inputs,), w, d)
        self.edge_encoder = MLP((config.n_edge_features,), w, d)
        self.global_encoder = MLP((config.n_global_features,), w, d)
        n_blocks = 1 if config.shared_block else config.n_steps
        self.blocks = nn.ModuleList([GraphBlock(w, d, config.residual) for _ in range(n_blocks)])
        self.decoder = MLP((w,), w, d)
        self.head = nn.Linear(w, config.n_out)

    def block(self, step: int) -> GraphBlock:
        return self.blocks[0 if self.config.shared_block else step]

    def embed(self, g: GraphBatch) -> torch.Tensor:
        """[B, width] latent after the decoder MLP (the CKA representation)."""
        return self._encode_process_decode(g, None)

    def stages(self, g: GraphBatch) -> dict[str, torch.Tensor]:
        """Every stage's representation, for layer-wise CKA (SPEC §7.4), in network order:
        ``encoder/nodes`` [N, width], ``encoder/edges`` [E, width], ``encoder/globals`` [B, width],
        the same three after each message-passing iteration ``step1/...`` .. ``step<n_steps>/...``,
        and ``decoder`` [B, width] (= :meth:`embed`). Rows: nodes, edges, events of ``g`` in order."""
        out: dict[str, torch.Tensor] = {}
        out["decoder"] = self._encode_process_decode(g, out)
        return out

    def _encode_process_decode(self, g: GraphBatch, record: dict[str, torch.Tensor] | None) -> torch.Tensor:
        c = self.config
        edge_graph = g.edge_graph
        x = self.node_encoder((node_inputs(g.nodes, c.n_types), None))
        e = self.edge_encoder((edge_inputs(g.edges), None))
        u = self.global_encoder((global_inputs(g.globals), None))
        for step in range(c.n_steps + 1):
            if step:
                x, e, u = self.block(step - 1)(x, e, u, g, edge_graph)
            if record is not None:
                name = f"step{step}" if step else "encoder"
                record.update({f"{name}/nodes": x, f"{name}/edges": e, f"{name}/globals": u})
        return self.decoder((u, None))

    def forward(self, g: GraphBatch) -> torch.Tensor:
        return self.head(self.embed(g))


def reference_forward(model: GraphNet, g: GraphBatch) -> torch.Tensor:
    """The plain edge-list forward pass: gather, concatenate, full matmul.

    Same parameters and result as ``model(g)``; kept as the benchmark baseline
    and as an independent check of the split first layer.
    """
    c = model.config
    edge_graph = g.edge_graph
    x = model.node_encoder.forward_concat(node_inputs(g.nodes, c.n_types))
    e = model.edge_encoder.forward_concat(edge_inputs(g.edges))
    u = model.global_encoder.forward_concat(global_inputs(g.globals))
    for step in range(c.n_steps):
        blk = model.block(step)
        r = 1.0 if c.residual else 0.0
        e = r * e + blk.edge.forward_concat(torch.cat([x[g.senders], x[g.receivers], e, u[edge_graph]], dim=1))
        agg = torch.zeros_like(x).index_add_(0, g.senders, e)
        x = r * x + blk.node.forward_concat(torch.cat([x, agg, u[g.node_graph]], dim=1))
        x_sum = torch.zeros_like(u).index_add_(0, g.node_graph, x)
        e_sum = torch.zeros_like(u).index_add_(0, edge_graph, e)
        u = r * u + blk.glob.forward_concat(torch.cat([x_sum, e_sum, u], dim=1))
    return model.head(model.decoder.forward_concat(u))


# ----------------------------------------------------------------------------- fine-tuning
def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (the paper quotes ~400k for its network)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def replace_head(model: GraphNet, n_out: int, seed: int = 0) -> GraphNet:
    """Swap the final Linear for a fresh one with ``n_out`` outputs (in place; returns model).

    The new layer is initialised from ``seed`` (torch's default Linear init), on
    the old head's device and dtype.
    """
    old = model.head
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        new = nn.Linear(old.in_features, n_out)
    finally:
        torch.random.set_rng_state(gen_state)
    model.head = new.to(device=old.weight.device, dtype=old.weight.dtype)
    model.config = dataclasses.replace(model.config, n_out=n_out)
    return model


def parameter_groups(model: GraphNet, lr_head: float = 1e-4, lr_backbone: float = 1e-5) -> list[dict]:
    """Adam parameter groups for fine-tuning: the new head at ``lr_head``, the rest at ``lr_backbone``.

    Frozen parameters (``requires_grad`` False) are left out; empty groups are dropped.
    """
    head_ids = {id(p) for p in model.head.parameters()}
    head = [p for p in model.head.parameters() if p.requires_grad]
    rest = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    groups = [{"params": head, "lr": lr_head, "name": "head"},
              {"params": rest, "lr": lr_backbone, "name": "backbone"}]
    return [g for g in groups if g["params"]]


def freeze(model: GraphNet, train: str = "head") -> GraphNet:
    """Transfer learning: freeze everything except ``train`` = "head" or "decoder" (decoder + head)."""
    if train not in ("head", "decoder"):
        raise ValueError(f"freeze: train must be 'head' or 'decoder', got {train!r}")
    trainable = [model.head] + ([model.decoder] if train == "decoder" else [])
    for p in model.parameters():
        p.requires_grad_(False)
    for m in trainable:
        for p in m.parameters():
            p.requires_grad_(True)
    return model
