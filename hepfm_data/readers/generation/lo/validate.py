"""Print LO cross sections at 13 TeV, and the published values they are checked against.

    python -m hepfm_data.readers.generation.lo.validate --pdf 13 --precision 0.005 ttW tHq
    python -m hepfm_data.readers.generation.lo.validate --reference ttW tttt   # each with its reference's PDF set

One line per process: σ ± integration error (pb), the PDF set, points, seconds; with ``--reference`` the
process's :class:`.processes.Reference` (value, citation, setup) and the difference in units of the combined
integration error. The integration is seeded (``generator.INTEGRATION_SEED``): the same command prints the
same numbers.
"""

from __future__ import annotations

import argparse
import math
import time

from hepfm_data.readers.generation.lo.generator import LOGenerator
from hepfm_data.readers.generation.lo.processes import PROCESSES, lo_process


def cross_section(name: str, pdf: str = "13", precision: float = 0.01, points: int = 4000) -> dict:
    """{process, pdf, sigma_pb, error_pb, points, seconds} of one integration."""
    t0 = time.perf_counter()
    gen = LOGenerator(name, pdf=pdf)
    sigma, err = gen.integrate(precision, points)
    return {"process": name, "pdf": gen.pdf.name, "sigma_pb": sigma, "error_pb": err,
            "points": sum(c.n_points for c in gen.components), "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("processes", nargs="*", default=sorted(PROCESSES))
    ap.add_argument("--pdf", default="13", help="Pythia PDF:pSet (13 NNPDF2.3 LO, 5 MSTW2008 LO, 6 MSTW2008 NLO)")
    ap.add_argument("--precision", type=float, default=0.01)
    ap.add_argument("--points", type=int, default=4000, help="points per VEGAS iteration")
    ap.add_argument("--reference", action="store_true", help="use each process's reference PDF set and compare")
    args = ap.parse_args(argv)
    for name in args.processes:
        ref = lo_process(name).reference
        pdf = ref.pdf if args.reference and ref is not None else args.pdf
        r = cross_section(name, pdf, args.precision, args.points)
        line = (f"{name:6s} sigma = {r['sigma_pb']:.6g} +- {r['error_pb']:.2g} pb  [{r['pdf']}; "
                f"{r['points']} points, {r['seconds']:.0f} s]")
        if args.reference and ref is not None:
            pull = (r["sigma_pb"] - ref.sigma_pb) / math.hypot(r["error_pb"], ref.error_pb)
            line += (f"\n       reference {ref.sigma_pb:.6g} +- {ref.error_pb:.2g} pb ({ref.citation}; {ref.setup}): "
                     f"ratio {r['sigma_pb'] / ref.sigma_pb:.4f}, {pull:+.1f} sigma")
        print(line, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
