"""Golden batches: the bytes every representation's loader yields, recorded before the representation
redesign (issue 25) and checked after it.

For each representation (the paper graph, paper_taus, typed slots with augmentations and the object
replacement pretext, jet_constituents, event_jets) and for view pairs (events and jets), one epoch of
``make_loader`` batches at a fixed seed is hashed (sha256 of every field's name, dtype, shape and bytes),
with 0 and 2 DataLoader worker processes. The test proves that they are the bytes recorded in
``tests/data/golden_batches.json`` before the redesign: moving code
between modules or registries changed no batch. Stores: synthetic records (Zarr, written in this test)
and real Pythia 8 + FastJet generation with re-simulated views (``rs3l_jet_stores``, shared).

One record per SIMD class of the machine (:func:`simd_class`: AVX-512 machines generate records that differ in
the last bits of some floats). Re-record (only for an intended change of a representation, with its version
bumped, or for a new class with the code that recorded the others):
``HEPFM_RECORD_GOLDEN=1 pytest tests/test_golden_batches.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from hepfm_data import load_catalog
from hepfm_data.batches.slots import ObjectReplacement
from hepfm_data.core.events import SampleInfo
from hepfm_data.loader import BoostZ, Compose, FlipEta, RotatePhi, make_loader
from hepfm_data.pipelines.build import write_store
from hepfm_data.pipelines.derive import derive
from hepfm_data.representations import Paired, SlotRepresentation, SlotSelection
from hepfm_data.testing import synthetic_events, wide_jet_constituents

GOLDEN = Path(__file__).parent / "data" / "golden_batches.json"
CAT = load_catalog()
VIEWS = ("seed", "fsr_up")


def batch_digest(batch) -> str:
    """sha256 of a batch dataclass: each field's name, dtype, shape and bytes in field order (None as such)."""
    h = hashlib.sha256(type(batch).__name__.encode())
    for f in dataclasses.fields(batch):
        t = getattr(batch, f.name)
        h.update(f.name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def epoch_digest(loader) -> dict:
    """{batches, events, sha256 over the sorted batch digests} of one epoch (workers interleave batches)."""
    digests = sorted(batch_digest(b) for b in loader)
    return {"batches": len(digests), "sha256": hashlib.sha256("".join(digests).encode()).hexdigest()}


@pytest.fixture(scope="module")
def synthetic_urls(tmp_path_factory) -> list[str]:
    """ttbar and ttH synthetic records with taus (Zarr, 3 shards each), paper_taus derived."""
    root = tmp_path_factory.mktemp("golden")
    out = []
    for i, proc in enumerate(("ttbar", "ttH")):
        ev = synthetic_events(150, seed=70 + i, first_event_id=1_000_000 * (i + 1), taus=True)
        write_store(str(root), proc, [(ev, SampleInfo(process=proc, source="synthetic"))], events_per_shard=60,
                    progress=False, seed=5)
        derive(str(root / proc), "paper_taus", catalog=CAT, progress=False)
        out.append(str(root / proc))
    return out


def _loaders(synthetic: list[str], jets: dict) -> dict:
    """{name: make_loader keyword arguments} of every representation and pair builder (same seed for all)."""
    base = dict(device="cpu", batch_size=16, seed=11, block_size=16, window_blocks=2, catalog=CAT)
    aug = Compose(RotatePhi(), FlipEta(), BoostZ(0.3))
    nominal = [jets[p]["nominal"] for p in ("rs3l_hz", "rs3l_zjet")]
    views = {jets[p]["nominal"]: [jets[p][v] for v in VIEWS] for p in ("rs3l_hz", "rs3l_zjet")}
    pair = dict(base, batch_size=8, block_size=8, window_blocks=1, mixing="none")
    return {
        "paper": (synthetic, dict(base, augment=aug)),
        "paper_taus": (synthetic, dict(base, representation="paper_taus")),
        "slots": (synthetic, dict(base, augment=aug,
                                  representation=SlotRepresentation(SlotSelection.from_catalog(CAT),
                                                                 pretext=ObjectReplacement()))),
        "jet_constituents": (nominal, dict(base, representation=wide_jet_constituents())),
        "event_jets": (nominal, dict(base, representation="event_jets")),
        "view_pairs": (nominal, dict(pair, representation=Paired("paper", views))),
        "jet_pairs": (nominal, dict(pair, representation=Paired(wide_jet_constituents(), views, names=list(VIEWS)))),
    }


def test_every_representation_yields_its_recorded_bytes(synthetic_urls, rs3l_jet_stores):
    """Each representation's epoch with 0 and with 2 workers equals the recorded golden digests (module
    docstring; that the bytes do not depend on the worker count is proven per builder in its own tests)."""
    _, jets = rs3l_jet_stores
    got = {}
    for name, (urls, kw) in _loaders(synthetic_urls, jets).items():
        for w in (0, 2):
            got[f"{name}/workers={w}"] = epoch_digest(make_loader(urls, num_workers=w, **kw))
            assert got[f"{name}/workers={w}"]["batches"] > 1, name
    record = json.loads(GOLDEN.read_text())
    if os.environ.get("HEPFM_RECORD_GOLDEN"):
        record[simd_class()] = got
        GOLDEN.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    assert simd_class() in record, f"no golden batches recorded for {simd_class()} machines (HEPFM_RECORD_GOLDEN=1)"
    assert got == record[simd_class()]


def simd_class() -> str:
    """The machine class whose generated records are bit-identical: numpy's float64 transcendental kernels
    (exp, sin, cos, ...) differ in the last bits on AVX-512 CPUs, and the emulation calls them, so Pythia 8 +
    FastJet stores (the jet representations here) differ between an AVX-512 machine and an AVX2 one. Measured:
    the digests recorded on an AMD EPYC (AVX2) are reproduced on an AVX-512 Intel Xeon with
    ``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"``, and not without it."""
    import numpy as np

    features = np._core._multiarray_umath.__cpu_features__
    return "x86-avx512" if features.get("AVX512_SKX") or features.get("AVX512F") else "baseline"
