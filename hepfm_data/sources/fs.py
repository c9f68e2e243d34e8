"""fsspec access to storage."""

from __future__ import annotations

import copy
from typing import Any

import fsspec


def resolve(url: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path) for ``url``: a local path, ``file://``, ``s3://``, ``http(s)://``, ``hf://``.

    ``storage_options`` is copied, never mutated (``datasets`` mutates the dicts it is handed).
    """
    fs, path = fsspec.core.url_to_fs(url, **copy.deepcopy(storage_options or {}))
    return fs, path
