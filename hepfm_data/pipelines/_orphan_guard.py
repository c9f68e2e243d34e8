"""Dask preload of hepfm's local worker programs (scheduler, nannies, workers): die with the parent.

Loaded by file path (``hepfm_data.pipelines.workers``), so it imports nothing of hepfm. On Linux the process
asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``): a driver killed
with SIGTERM or SIGKILL takes its scheduler and nannies with it, and a nanny its worker, instead of
leaving a cluster that keeps computing. A parent already gone before the call ends the process.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def dask_setup(server=None) -> None:
    """Called by Dask when the process starts (preload protocol)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent == 1 or os.getppid() != parent:
        os._exit(1)
    driver = os.environ.get("HEPFM_DRIVER_PID")
    if driver is not None:
        try:
            os.kill(int(driver), 0)
        except ProcessLookupError:
            os._exit(1)
