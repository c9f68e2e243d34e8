"""Loader states are untrusted input (issue 17): a state_dict from a checkpoint file is
validated before it steers a loader. Fuzzed with hypothesis on a real Zarr store."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepfm_data.core.events import SampleInfo
from hepfm_data.loader import LoaderStateError, StreamingDataset
from hepfm_data.pipelines.build import write_store
from hepfm_data.testing import synthetic_events

KEYS = ("format", "epoch", "consumed", "rank", "world_size", "num_workers", "fingerprint", "levels")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A StreamingDataset (node budget, 2 ranks) over a small real Zarr store."""
    root = tmp_path_factory.mktemp("state_store")
    write_store(str(root), "ttW", [(synthetic_events(200, seed=3), SampleInfo(process="ttW", source="synthetic"))],
                layout="zarr", events_per_shard=60, progress=False)
    return StreamingDataset(str(root / "ttW"), batch_size=None, max_nodes=80, block_size=16, window_blocks=2,
                            rank=0, world_size=2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(KEYS + ("extra",)), st.one_of(json_values, st.just("<del>"))),
                      max_size=3),
       levels=st.lists(st.lists(st.integers(-2, 40), min_size=0, max_size=4), max_size=3))
def test_any_state_loads_or_raises_a_named_loader_state_error(dataset, edits, levels):
    """Every mutated state either loads (and then its position lies inside the epoch) or raises
    LoaderStateError naming a key; never another exception, never a partial load."""
    good = dataset.state_dict()
    state = json.loads(json.dumps(good))
    if levels:
        state["levels"] = levels
    for key, value in edits:
        if value == "<del>":
            state.pop(key, None)
        else:
            state[key] = value
    before = dataset.state_dict()
    try:
        dataset.load_state_dict(state)
    except LoaderStateError as exc:
        assert "key" in str(exc) or "loader state" in str(exc)
        assert dataset.state_dict() == before  # refused: nothing changed
    else:
        assert 0 <= dataset.consumed <= dataset.n_batches()
    finally:
        dataset.load_state_dict(good)


def test_named_errors(dataset):
    """Each check names its key: wrong type, out of range, unknown key, bad fingerprint, not JSON."""
    good = dataset.state_dict()
    cases = {"'epoch'": {**good, "epoch": True}, "'consumed'": {**good, "consumed": -1},
             "unknown key": {**good, "__class__": "x"}, "'fingerprint'": {**good, "fingerprint": "../../etc"},
             "'levels'\\[0\\]": {**good, "levels": [[2, 0]]}, "'levels'\\[0\\].world_size": {**good, "levels": [[0, 0, 1]]},
             "'world_size'": {**good, "world_size": 4096, "num_workers": 256}}
    for match, state in cases.items():
        with pytest.raises(LoaderStateError, match=match):
            dataset.load_state_dict(state)
    with pytest.raises(LoaderStateError, match="not JSON"):
        dataset.load_state_dict("{'epoch': 1}")
    dataset.load_state_dict(json.dumps(good))  # the JSON text itself is accepted
