"""The direct Zarr read path (layouts.ZarrColumn: shard index + numcodecs) on real stores
written by write_zarr: identical to the zarr API over random ranges and every codec hepfm
writes, and corrupt shard indexes raise a StoreError naming the shard."""

from __future__ import annotations

import numpy as np
import pytest
from fsspec.implementations.local import LocalFileSystem

from hepfm_data.core.errors import StoreError
from hepfm_data.core.events import SampleInfo
from hepfm_data.pipelines.build import write_store
from hepfm_data.store import open_store
from hepfm_data.store.layouts import ZarrShard, _zarr_group
from hepfm_data.testing import synthetic_events


@pytest.mark.parametrize("codec", ["blosc-zstd", "zstd", "none"])
def test_direct_read_equals_zarr_api(tmp_path, codec):
    """Several inner chunks per column (4096 events / 32768 nodes): random row ranges read
    directly equal the zarr API's arrays, column by column."""
    write_store(str(tmp_path), "ttH", [(synthetic_events(7000, seed=2), SampleInfo(process="ttH", source="synthetic"))],
                layout="zarr", events_per_shard=7000, compression={"codec": codec, "level": 3}, progress=False)
    st = open_store(str(tmp_path / "ttH"))
    info = max(st.shards(), key=lambda i: i.n_events)
    assert info.n_events > 4096 and isinstance(st._handle(info, f"{st.path}/{info.path}"), ZarrShard)
    g = _zarr_group(LocalFileSystem(), f"{st.path}/{info.path}")
    off = np.concatenate([[0], np.cumsum(g["n_node"][...])])
    rng = np.random.default_rng(0)
    for _ in range(12):
        a = int(rng.integers(0, info.n_events))
        b = int(rng.integers(a, info.n_events + 1))
        cols = st.read_columns(info, a, b)
        for k, v in cols.events.items():
            np.testing.assert_array_equal(v, g[k][a:b], err_msg=k)
        for k, v in cols.nodes.items():
            np.testing.assert_array_equal(v, g[k][off[a]:off[b]], err_msg=k)
        np.testing.assert_array_equal(st.n_node(info, a, b), g["n_node"][a:b])


def test_corrupt_shard_index_is_named(tmp_path):
    """A shard index pointing outside its file raises StoreError naming the shard, not a
    numcodecs or numpy error."""
    write_store(str(tmp_path), "ttH", [(synthetic_events(300, seed=1), SampleInfo(process="ttH", source="synthetic"))],
                layout="zarr", events_per_shard=300, progress=False)
    st = open_store(str(tmp_path / "ttH"))
    info = st.shards("train")[0]
    f = tmp_path / "ttH" / info.path / "pt" / "c" / "0"
    raw = bytearray(f.read_bytes())
    raw[-20:-12] = (10**12).to_bytes(8, "little")  # the last chunk's offset
    f.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=info.name):
        open_store(str(tmp_path / "ttH")).read_shard(info)
