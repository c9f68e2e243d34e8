"""Local worker programs (hepfm_data.pipelines.workers): started from any caller, gone with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("dask.distributed")

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """\
import os, time
import psutil
from hepfm_data.pipelines.workers import dask_client

def busy(x):
    time.sleep(120)
    return x

with dask_client(workers=1) as client:
    futures = client.map(busy, range(1))
    client.wait_for_workers(1)
    time.sleep(0.5)
    kids = [p.pid for p in psutil.Process().children(recursive=True)]
    print("cluster", *kids, flush=True)
    time.sleep(120)
"""


def alive_after(pids: list[int], seconds: float) -> list[int]:
    """The processes of ``pids`` still running (not zombies) after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive


def test_worker_programs_die_with_a_killed_caller(tmp_path):
    """A caller SIGKILLed while its worker runs a task (no clean shutdown: Ctrl-C and normal exits close the
    cluster themselves) leaves no scheduler, nanny or worker process behind: each asked the kernel to
    kill it with its parent. Before this, a killed build's cluster kept generating events for an hour."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    line = proc.stdout.readline()
    assert line.startswith("cluster"), line
    kids = [int(p) for p in line.split()[1:]]
    assert len(kids) >= 3  # scheduler, nanny, worker (+ multiprocessing's resource tracker)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    alive = alive_after(kids, 20)
    print(f"{len(kids)} cluster processes, alive 20 s after the kill: {alive}")
    assert alive == []


POOL = """\
import multiprocessing, time
from concurrent.futures import ProcessPoolExecutor
import psutil
from hepfm_data.pipelines.workers import die_with_parent

if __name__ == "__main__":
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent) as pool:
        futures = [pool.submit(time.sleep, 120) for _ in range(2)]
        time.sleep(3)
        kids = [p.pid for p in psutil.Process().children() if "resource_tracker" not in " ".join(p.cmdline())]
        print("pool", *kids, flush=True)
        time.sleep(120)
"""


def test_a_study_pool_dies_with_its_killed_driver(tmp_path):
    """A process pool started with ``initializer=die_with_parent`` (the reproduce study's training pool)
    does not outlive its SIGKILLed driver: before this, a killed study left its pool training."""
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    line = proc.stdout.readline()
    assert line.startswith("pool"), line
    kids = [int(p) for p in line.split()[1:]]
    assert len(kids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    alive = alive_after(kids, 20)
    assert alive == []
