"""Sources: byte access to local, HTTP(S), S3 and hf:// storage through fsspec.

The lowest layer: knows nothing about events. ``resolve`` maps a URL (or local
path) to an fsspec filesystem and a path on it."""

from __future__ import annotations

from .fs import resolve

__all__ = ["resolve"]
