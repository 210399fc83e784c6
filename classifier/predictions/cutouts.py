"""Cutouts fetched by sky position from a survey's image service (docs/positions.md).

The service is CUTOUT_URL, a template with ``{ra}`` and ``{dec}`` in degrees; by default the
Legacy Surveys viewer's JPEG cutout at Galaxy10 DECaLS's framing. Fetching is polite: connect
and read timeouts, retries with back-off on connection failures and 429/5xx (urllib3's Retry),
at most CUTOUT_MAX_CONCURRENT fetches in flight per process, a User-Agent that names the
product and whom to contact, and a cache (Django's) so that a position is fetched once.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import urllib3
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from PIL import Image
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from classifier.core.exceptions import CutoutUnavailableError, NoImagingError
from classifier.core.positions import Position, format_coordinate

CACHE_PREFIX = "cutout:v1:"
# A cutout is blank (no imaging there) when at least this share of its pixels have exactly
# the same RGB value: outside the footprint the viewer sends a uniform (black) image, while
# sky noise makes even an empty field of a real cutout vary pixel to pixel.
BLANK_FRACTION = 0.9
BLANK_CHECK_SIDE = 256
# Retried: the service is overloaded or restarting; other answers will not change on retry.
RETRY_STATUSES = (429, 500, 502, 503, 504)
PRODUCT = "GalaxyClassifier"


@dataclass(frozen=True)
class Cutout:
    data: bytes
    url: str
    from_cache: bool = False


def cutout_url(position: Position) -> str:
    return settings.CUTOUT_URL.format(ra=format_coordinate(position.ra), dec=format_coordinate(position.dec))


def user_agent() -> str:
    contact = settings.CUTOUT_CONTACT_URL
    version = settings.SPECTACULAR_SETTINGS.get("VERSION", "1")
    return f"{PRODUCT}/{version}" + (f" (+{contact})" if contact else "")


# --- the per-process HTTP client, built lazily and reset when the settings change -------------

_lock = threading.Lock()
_client: tuple[Any, threading.BoundedSemaphore] | None = None


def _http() -> tuple[Any, threading.BoundedSemaphore]:
    global _client  # noqa: PLW0603 - one pool and one limit per process
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                retries = settings.CUTOUT_RETRIES
                retry = urllib3.Retry(
                    total=retries,
                    connect=retries,
                    # A read that timed out once is retried at most once: a slow service
                    # rarely gets faster, and each retry costs the caller a full read timeout.
                    read=min(retries, 1),
                    status=retries,
                    other=0,
                    redirect=2,
                    backoff_factor=settings.CUTOUT_BACKOFF_S,
                    status_forcelist=RETRY_STATUSES,
                    allowed_methods=frozenset({"GET"}),
                    raise_on_status=False,
                    # A Retry-After of minutes would hold a web request that must answer quickly.
                    respect_retry_after_header=False,
                )
                timeout = urllib3.Timeout(
                    connect=settings.CUTOUT_CONNECT_TIMEOUT_S, read=settings.CUTOUT_READ_TIMEOUT_S
                )
                limit = max(settings.CUTOUT_MAX_CONCURRENT, 1)
                pool = urllib3.PoolManager(
                    num_pools=4,
                    maxsize=limit,
                    retries=retry,
                    timeout=timeout,
                    headers={"User-Agent": user_agent()},
                )
                _client = (pool, threading.BoundedSemaphore(limit))
            client = _client
    return client


@receiver(setting_changed)
def _reset_client(*, setting: str, **kwargs: Any) -> None:
    global _client  # noqa: PLW0603
    if setting.startswith("CUTOUT_") or setting == "SPECTACULAR_SETTINGS":
        with _lock:
            _client = None


_FETCH_LOCKS = tuple(threading.Lock() for _ in range(256))


def _cache_key(url: str) -> str:
    # By URL: the rounded position, and the service and framing it was fetched with.
    return CACHE_PREFIX + hashlib.sha256(url.encode()).hexdigest()


def fetch_cutout(position: Position) -> Cutout:
    """The cutout at the position, from the cache or the service.

    Raises NoImagingError when the service answers 404, and CutoutUnavailableError when it
    fails, is too slow, or sends more than CUTOUT_MAX_BYTES.
    """
    url = cutout_url(position)
    key = _cache_key(url)
    cached = cache.get(key)
    if isinstance(cached, bytes):
        return Cutout(cached, url, from_cache=True)
    # Threads fetching the same position (a catalogue that lists it twice) wait for the
    # first: it is fetched once. Striped locks, so unrelated positions rarely wait.
    with _FETCH_LOCKS[int(key[-8:], 16) % len(_FETCH_LOCKS)]:
        cached = cache.get(key)
        if isinstance(cached, bytes):
            return Cutout(cached, url, from_cache=True)
        data = _download(url)
        cache.set(key, data, timeout=settings.CUTOUT_CACHE_SECONDS)
    return Cutout(data, url)


def _download(url: str) -> bytes:
    pool, slots = _http()
    wait_s = settings.CUTOUT_CONNECT_TIMEOUT_S + settings.CUTOUT_READ_TIMEOUT_S
    if not slots.acquire(timeout=wait_s):
        raise CutoutUnavailableError(
            "too many cutouts are being fetched at once; try again shortly", timed_out=True
        )
    try:
        response = pool.request("GET", url, preload_content=False)
        try:
            if response.status == 404:
                raise NoImagingError("the survey has no imaging at this position (HTTP 404)", url=url)
            if response.status != 200:
                raise CutoutUnavailableError(f"the cutout service answered HTTP {response.status}")
            limit = settings.CUTOUT_MAX_BYTES
            data = response.read(limit + 1)
            if len(data) > limit:
                raise CutoutUnavailableError(f"the cutout service sent more than {limit:,} bytes")
            return data
        finally:
            response.release_conn()
    except MaxRetryError as exc:
        # urllib3's NewConnectionError (refused, no such host) is a ConnectTimeoutError by descent.
        timed_out = isinstance(
            exc.reason, ConnectTimeoutError | ReadTimeoutError | TimeoutError
        ) and not isinstance(exc.reason, NewConnectionError)
        kind = "did not answer in time" if timed_out else "could not be reached"
        raise CutoutUnavailableError(
            f"the cutout service {kind} ({type(exc.reason).__name__})", timed_out=timed_out
        ) from exc
    except (ReadTimeoutError, TimeoutError) as exc:
        raise CutoutUnavailableError("the cutout service did not answer in time", timed_out=True) from exc
    except (HTTPError, OSError) as exc:
        # A connection cut mid-body (ProtocolError) or any other transport failure.
        raise CutoutUnavailableError(
            f"the cutout service dropped the connection ({type(exc).__name__})"
        ) from exc
    finally:
        slots.release()


def is_blank(data: bytes) -> bool:
    """Whether a cutout that already passed upload validation is blank: at least
    BLANK_FRACTION of its pixels share exactly one RGB value."""
    with Image.open(io.BytesIO(data)) as image:
        # Judged at the scale the upload check decoded a JPEG at, not its full size: a 40-
        # megapixel JPEG from the service (one configured with a large size=, or a hostile
        # one) passed that check and then cost over a gigabyte here as 32-bit pixels.
        image.draft("RGB", (BLANK_CHECK_SIDE, BLANK_CHECK_SIDE))
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint32).reshape(-1, 3)
    if pixels.size == 0:
        return True
    packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    _values, counts = np.unique(packed, return_counts=True)
    return counts.max() >= BLANK_FRACTION * len(packed)
