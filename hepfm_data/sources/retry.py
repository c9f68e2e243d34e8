"""Retries with exponential backoff on transient remote errors.

A *transient* error is one that a later attempt can cure: a connection reset,
refused or dropped mid-body, a timeout, or an HTTP 5xx / 408 / 429 answer.
Everything else (404 -> ``FileNotFoundError``, 403 -> ``PermissionError``, bad
input) is raised at once. After the last attempt a
:class:`~hepfm_data.core.errors.RemoteError` names the URL, the operation, the number
of attempts and the last error.

The classification walks the exception chain (``__cause__``/``__context__``) and
matches class names, so aiohttp, botocore, requests and urllib3 errors are
recognised without importing those libraries.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from hepfm_data.core import config
from hepfm_data.core.errors import HepfmError, RemoteError

log = logging.getLogger("hepfm_data.sources")
T = TypeVar("T")

#: errno values of connection-level failures worth another attempt
TRANSIENT_ERRNO = frozenset({
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETRESET, errno.EAGAIN,
})
#: exception class names (anywhere in the MRO) that mean "the transfer broke, try again"
TRANSIENT_NAMES = frozenset({
    # builtins / http.client / urllib3 / requests
    "TimeoutError", "ConnectionError", "IncompleteRead", "RemoteDisconnected", "ProtocolError",
    "ChunkedEncodingError", "ReadTimeout", "ConnectTimeout",
    # aiohttp
    "ClientPayloadError", "ServerDisconnectedError", "ClientConnectionError", "ServerTimeoutError",
    "ClientConnectorError", "ClientOSError", "ConnectionTimeoutError", "SocketTimeoutError",
    # botocore / aiobotocore
    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
    "ResponseStreamingError", "IncompleteReadError", "HTTPClientError",
})
#: never retried, even when a transient error is somewhere in the chain
PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError, HepfmError)


def _status(exc: BaseException) -> int | None:
    """HTTP status carried by an aiohttp, requests/huggingface_hub or botocore error."""
    for attr in ("status", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return value if isinstance(value, int) else None
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is worth retrying."""
    if isinstance(exc, PERMANENT):
        return False
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and len(seen) < 8:
        seen.add(id(e))
        if isinstance(e, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
            return True
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNO:
            return True
        if any(c.__name__ in TRANSIENT_NAMES for c in type(e).__mro__):
            return True
        status = _status(e)
        if status is not None and (status >= 500 or status in (408, 429)):
            return True
        e = e.__cause__ or e.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently remote operations are retried.

    ``attempts`` counts every try (1 = no retry). The wait before try ``k+1`` is
    ``min(base_delay * factor**(k-1), max_delay)`` seconds; no jitter, so runs are
    reproducible. Defaults: 5 attempts, 0.5 s, x2, capped at 30 s (about 7.5 s of
    waiting in total). Environment overrides: ``HEPFM_RETRIES``, ``HEPFM_RETRY_DELAY``.
    """

    attempts: int = 5
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise HepfmError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.factor < 1 or self.max_delay < 0:
            raise HepfmError(f"RetryPolicy delays must be >= 0 and factor >= 1, got {self}")

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The default policy, with ``HEPFM_RETRIES`` / ``HEPFM_RETRY_DELAY`` applied."""
        return cls(attempts=config.retries(cls.attempts), base_delay=config.retry_delay(cls.base_delay))

    def delays(self) -> Iterator[float]:
        """The ``attempts - 1`` waits between tries, in seconds."""
        for k in range(self.attempts - 1):
            yield min(self.base_delay * self.factor**k, self.max_delay)


def _give_up(url: str, what: str, policy: RetryPolicy, exc: BaseException) -> RemoteError:
    return RemoteError(
        f"{url}: {what} failed after {policy.attempts} attempt(s) with backoff "
        f"(HEPFM_RETRIES to change); last error: {type(exc).__name__}: {exc}"
    )


def _after_failure(exc: Exception, attempt: int, delays: Iterator[float], *, url: str, what: str,
                   policy: RetryPolicy) -> float:
    """The wait before the next try; re-raises permanent errors, RemoteError after the last try."""
    if not is_transient(exc):
        raise exc
    delay = next(delays, None)
    if delay is None:
        raise _give_up(url, what, policy, exc) from exc
    log.warning("%s: %s failed (attempt %d/%d: %s: %s); retrying in %.2g s",
                url, what, attempt, policy.attempts, type(exc).__name__, exc, delay)
    return delay


def call_with_retries(fn: Callable[[], T], *, url: str, what: str, policy: RetryPolicy | None = None) -> T:
    """``fn()``, retried on transient errors; :class:`RemoteError` naming ``url`` after the last try."""
    policy = policy or RetryPolicy.from_env()
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            time.sleep(_after_failure(exc, attempt, delays, url=url, what=what, policy=policy))


async def acall_with_retries(fn: Callable[[], Awaitable[T]], *, url: str, what: str,
                             policy: RetryPolicy | None = None) -> T:
    """Async twin of :func:`call_with_retries` (``fn`` returns a fresh awaitable per try)."""
    policy = policy or RetryPolicy.from_env()
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except Exception as exc:
            await asyncio.sleep(_after_failure(exc, attempt, delays, url=url, what=what, policy=policy))
