"""Shared test fixtures (session-scoped where setup is expensive). Other test
modules may append fixtures here."""

from __future__ import annotations

import shutil

import pytest

from hepfm_data.testing import DELPHES_FILE, NANOAOD_FILE, PHYSLITE_FILE


@pytest.fixture(scope="session")
def delphes_file():
    """The real Delphes 3.4.2 file (10 ttH events), shipped in tests/data/."""
    return DELPHES_FILE


@pytest.fixture(scope="session")
def nanoaod_file():
    """The real CMS NanoAOD file (40 Drell-Yan events), shipped in tests/data/."""
    return NANOAOD_FILE


@pytest.fixture(scope="session")
def physlite_file():
    """The real ATLAS DAOD_PHYSLITE file (100 events, MeV), shipped in tests/data/."""
    return PHYSLITE_FILE


@pytest.fixture
def delphes_copy(delphes_file, tmp_path):
    """A writable copy of the real Delphes file (to truncate or corrupt)."""
    dst = tmp_path / "copy.root"
    shutil.copyfile(delphes_file, dst)
    return dst


@pytest.fixture(scope="session")
def s3_server():
    """A real moto S3 server on 127.0.0.1 for the session (``hepfm_data.sources.testing.s3_server``);
    yields its endpoint URL with AWS_ENDPOINT_URL, dummy keys and us-east-1 set."""
    from hepfm_data.sources.testing import s3_server as serve

    with serve() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket on the moto server; yields (bucket name, storage_options)."""
    import re

    import s3fs

    name = "hepfm-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    opts = {"client_kwargs": {"endpoint_url": s3_server}}
    fs = s3fs.S3FileSystem(**opts)
    if not fs.exists(name):
        fs.mkdir(name)
    yield name, opts


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module: small graphs gain nothing from more, and a busy
    2-core CI box makes multi-threaded OpenMP spin (10x slower); the previous count is restored
    after. Use: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def run_rs3l_tiny(tmp_path):
    """``run(config name, stores root, views) -> (results, saved results.json)``: recipes/rs3l.py on a tiny
    config at 1 pretraining + 1 fine-tuning epoch, checked for what every run gives: the three variants,
    rejection at 0.3/0.5/0.7 (>= 1), a Wasserstein distance in [0, 1) per view, test events counted."""
    import json
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))  # recipes/ are scripts beside the package, not installed
    from recipes import rs3l

    def run(config: str, stores, views):
        cfg = repo / "recipes" / "configs" / f"{config}.yaml"
        results = rs3l.main([str(cfg), f"--data.stores={stores}", f"--out={tmp_path / 'run'}",
                             "--pretrain.epochs=1", "--finetune.epochs=1"])
        assert set(results) == {"fixed", "floating", "supervised"}
        for r in results.values():
            assert set(r["rejection"]) == {"0.3", "0.5", "0.7"} and all(v >= 1 for v in r["rejection"].values())
            assert set(r["wasserstein"]) == set(views) and all(0 <= w < 1 for w in r["wasserstein"].values())
        saved = json.loads((tmp_path / "run" / "results.json").read_text())
        assert saved["results"]["fixed"]["n_test"] > 0
        return results, saved

    return run


@pytest.fixture(scope="session")
def rs3l_jet_stores(tmp_path_factory):
    """rs3l_hz and rs3l_zjet, 24 events each (real Pythia 8 + FastJet; one generation unit, one shard per
    split: each shard costs a record write), and their seed / fsr_up views; yields (root, urls)."""
    pytest.importorskip("pythia8mc")
    from hepfm_data.testing import build_resimulated

    root = tmp_path_factory.mktemp("rs3ljets")
    return root, build_resimulated(str(root), ("rs3l_hz", "rs3l_zjet"), ("seed", "fsr_up"), 24)


@pytest.fixture(scope="session")
def tiny_study():
    """``tiny_study(module, "<name>_tiny.yaml", root, *overrides)``: the tiny configuration of the study recipe
    ``recipes.<module>`` (``recipes/configs/<name>``) with every output under ``root``: ``stores/``, ``results/``,
    the report ``REPORT.md``, ``plots/`` and (where the study has one) ``work/``."""
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))  # recipes/ are scripts beside the package, not installed

    def make(module, config: str, root: Path, *extra: str):
        tiny = repo / "recipes" / "configs" / config
        opts = [f"--data.stores={root / 'stores'}", f"--results={root / 'results'}", f"--report={root / 'REPORT.md'}",
                f"--plots={root / 'plots'}"]
        if hasattr(module.parse([str(tiny)])[0], "workdir"):
            opts.append(f"--workdir={root / 'work'}")
        return module.parse([str(tiny), *opts, *extra])[0]

    return make
