"""``hepfm-data export NAME DIR``: a Hugging Face dataset folder (Parquet + dataset card)."""

from __future__ import annotations

import argparse

HELP = "export a store as a Hugging Face dataset folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hepfm_data.serving.export import ROWS_PER_FILE, ROWS_PER_GROUP

    p.add_argument("name", help="hepfm/<process> or hepfm/<task> (the hepfm/ prefix is optional)")
    p.add_argument("out", help="output folder (gets data/*.parquet and README.md)")
    p.add_argument("--storage", help="storage root holding <root>/<process> (default: $HEPFM_STORAGE or "
                                     "~/.cache/hepfm/stores); a local path or an fsspec URL")
    p.add_argument("--rows-per-group", type=int, default=ROWS_PER_GROUP, help="events per Parquet row group")
    p.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE, help="events per Parquet file at most")
    p.add_argument("--overwrite", action="store_true", help="replace data/ and README.md of a non-empty folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from hepfm_data.serving.export import export_dataset

    sizes = export_dataset(args.name, args.out, storage=args.storage, rows_per_group=args.rows_per_group,
                           rows_per_file=args.rows_per_file, overwrite=args.overwrite, progress=not args.quiet)
    print(f"exported {args.name} to {args.out}: " + ", ".join(f"{s} {n:,}" for s, n in sizes.items()) + " events")
    print(f"check: python -c \"import datasets; print(datasets.load_dataset({str(args.out)!r}))\"")
    print(f"upload: huggingface-cli upload <user>/<repo> {args.out} --repo-type dataset")
    return 0
