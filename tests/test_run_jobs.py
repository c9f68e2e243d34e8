"""recipes/reproduce.py ``run_jobs``: the driver's bar over a study's runs moves every epoch, in-process and from
spawned pool workers (the runs of the 10^4-per-class cells take minutes each: a bar that moves only when a run
ends stands still for that long)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # recipes/ are scripts beside the package, not installed

from recipes import reproduce  # noqa: E402
from recipes.common import load_config  # noqa: E402

TINY = REPO / "recipes" / "configs" / "reproduce_tiny.yaml"
EPOCHS = 4


def _ticking_job(cfg, key: str, epochs_run: int) -> str:
    """A stand-in training run: ``epochs_run`` epochs of a run capped at EPOCHS, each reported the way
    ``hepfm_models.training.fit`` calls ``on_epoch``."""
    tick = reproduce.epoch_ticks(key, EPOCHS)
    for epoch in range(epochs_run):
        tick({"epoch": epoch})
    return key


class _RecordingBar(reproduce.RunBar):
    """A RunBar that remembers every tick it was sent and every whole run it counted (in the driver)."""

    seen: list = []

    def put(self, tick):
        type(self).seen.append(("tick", *tick))
        super().put(tick)

    def done(self, keys):
        type(self).seen.append(("done", *keys))
        super().done(keys)


def test_run_bar_counts_epoch_fractions_and_lands_on_whole_runs(capsys):
    """Ticks add their fraction of a run; a finished run adds what its ticks left (early stopping), a late tick
    of a finished run is ignored and a run never counts more than once."""
    bar = reproduce.RunBar(2, "runs", True)
    bar.put(("a", 0.25))
    bar.put(("a", 0.25))
    assert bar.bar.n == pytest.approx(0.5)
    bar.done(["a"])
    assert bar.bar.n == pytest.approx(1.0)
    bar.put(("a", 0.25))  # late: already whole
    assert bar.bar.n == pytest.approx(1.0)
    for _ in range(5):  # more ticks than the cap: capped at one run
        bar.put(("b", 0.25))
    assert bar.bar.n == pytest.approx(2.0)
    bar.done(["b"])
    assert bar.bar.n == pytest.approx(2.0)
    bar.bar.close()
    assert "2.0/2" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [1, 2])
def test_run_jobs_moves_the_bar_every_epoch(monkeypatch, workers):
    """With 1 worker (in-process) and with 2 spawned pool workers (ticks through the pool's queue to the driver's
    drain thread), every epoch of every run reaches the driver's bar, each run ends counted whole (runs that
    stop early included), and no tick channel is left set afterwards."""
    cfg = load_config(reproduce.ReproduceConfig, TINY, [f"--workers={workers}", "--progress=true"])
    _RecordingBar.seen = []
    monkeypatch.setattr(reproduce, "RunBar", _RecordingBar)
    jobs = [("r0", 4), ("r1", 2), ("r2", 3)]
    executed: list[str] = []
    reproduce.run_jobs(cfg, _ticking_job, jobs, executed, "runs")
    assert sorted(executed) == ["r0", "r1", "r2"]
    seen = _RecordingBar.seen
    for key, n in jobs:
        ticks = [s for s in seen if s[0] == "tick" and s[1] == key]
        assert len(ticks) == n and all(s[2] == pytest.approx(1 / EPOCHS) for s in ticks)
        assert ("done", key) in seen
    assert reproduce._TICKS is None
