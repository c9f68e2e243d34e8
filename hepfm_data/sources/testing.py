"""Real remote endpoints on loopback, for tests and benchmarks of remote storage.

* :func:`s3_server`: a moto S3 server (``moto.server.ThreadedMotoServer``) on
  127.0.0.1 with ``AWS_ENDPOINT_URL`` and dummy credentials set in the
  environment for the duration of the ``with`` block.
* :func:`http_server`: a static file server (``http.server`` in a thread) with
  HTTP range requests and fault injection: drop the connection after ``n`` bytes
  of the body, or answer 503, for the next ``times`` GETs (``None`` = always);
  ``extra_links`` adds hostile links to directory listings (untrusted-store tests).

Nothing here reaches beyond the machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hepfm_data.core.config import environment

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "hepfm-test",
    "AWS_SECRET_ACCESS_KEY": "hepfm-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _clear_fs_caches() -> None:
    """Forget cached filesystem instances bound to an old endpoint."""
    import fsspec

    for proto in ("s3", "http", "https"):
        try:
            fsspec.get_filesystem_class(proto).clear_instance_cache()
        except (ImportError, ValueError):  # pragma: no cover - s3fs missing
            pass
    from hepfm_data.sources import fs as _fs

    for cls in list(_fs._classes.values()):
        cls.clear_instance_cache()


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Run a moto S3 server on 127.0.0.1 (free port); yields its endpoint URL.

    Sets ``AWS_ENDPOINT_URL``, dummy keys and ``AWS_DEFAULT_REGION=us-east-1`` in
    ``os.environ`` and restores them on exit. Create buckets with
    ``s3fs.S3FileSystem().mkdir("bucket")`` (no region argument).
    """
    import logging

    from moto.server import ThreadedMotoServer

    wlog = logging.getLogger("werkzeug")  # moto's per-request lines
    level = wlog.level
    wlog.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
    try:
        with environment(env):
            _clear_fs_caches()
            yield endpoint
    finally:
        _clear_fs_caches()
        server.stop()
        wlog.setLevel(level)


@dataclass
class Fault:
    """Break the next ``times`` GET answers (``None``: all) whose path contains ``path_contains``:
    send only ``drop_after`` bytes of the body then close the connection, answer ``status``
    (e.g. 503) instead, or ``stall`` seconds after the headers before sending the body (a read
    timeout for a client with a shorter socket timeout). ``per_path``: ``times`` counts per path."""

    drop_after: int | None = None
    status: int | None = None
    stall: float = 0.0
    times: int | None = None
    path_contains: str = ""
    per_path: bool = False
    hits: dict[str, int] = field(default_factory=dict)


@dataclass
class HTTPTestServer:
    """A running :func:`http_server`: its base ``url``, request counters and the active fault."""

    url: str
    root: Path
    fault: Fault | None = None
    #: URL-path substring -> hrefs appended to the listing of every directory whose path contains it
    extra_links: dict[str, list[str]] = field(default_factory=dict)
    gets: int = 0
    faults_injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take_fault(self, path: str) -> Fault | None:
        """Count a GET; return the fault to apply to it, if any."""
        with self.lock:
            self.gets += 1
            f = self.fault
            if f is None or f.path_contains not in path:
                return None
            key = path if f.per_path else ""
            n = f.hits.get(key, 0)
            if f.times is not None and n >= f.times:
                return None
            f.hits[key] = n + 1
            self.faults_injected += 1
            return f


class _Handler(SimpleHTTPRequestHandler):
    """Static files with single ``Range: bytes=a-b`` support and fault injection."""

    state: HTTPTestServer

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def list_directory(self, path):
        extra = [h for key, hrefs in self.state.extra_links.items() if key in self.path for h in hrefs]
        if not extra:
            return super().list_directory(path)
        import html
        import io
        import urllib.parse

        names = sorted(os.listdir(path))
        hrefs = [urllib.parse.quote(n + ("/" if os.path.isdir(os.path.join(path, n)) else "")) for n in names] + extra
        body = ("<html><body><ul>" + "".join(f'<li><a href="{html.escape(h, quote=True)}">{html.escape(h)}</a></li>'
                                              for h in hrefs) + "</ul></body></html>").encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def do_GET(self):  # noqa: N802
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            return super().do_GET()  # directory listing (fsspec parses its links); never faulted
        fault = self.state.take_fault(self.path)
        if fault is not None and fault.status is not None:
            self.send_error(fault.status, "injected fault")
            return
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return
        data = path.read_bytes()
        start, end, status = 0, len(data), HTTPStatus.OK
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "") or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start, end = int(m.group(1)), (int(m.group(2)) + 1 if m.group(2) else len(data))
            else:
                start = max(0, len(data) - int(m.group(2)))
            end = min(end, len(data))
            if start >= len(data):
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        body = data[start:end]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if fault is not None and fault.stall:
            self.wfile.flush()
            time.sleep(fault.stall)
        if fault is not None and fault.drop_after is not None:
            self.wfile.write(body[: fault.drop_after])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
            self.wfile.write(body)


@contextlib.contextmanager
def http_server(root: str | os.PathLike) -> Iterator[HTTPTestServer]:
    """Serve ``root`` over HTTP on 127.0.0.1 (free port); set ``.fault`` to inject failures."""
    state = HTTPTestServer(url="", root=Path(root))
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True, name="hepfm-http-test")
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
