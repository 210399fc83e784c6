"""A stand-in for the Legacy Surveys cutout service, on loopback, for the position tests.

It answers GET /jpeg-cutout?ra=..&dec=.. with a JPEG: the Galaxy Zoo DECaLS image nearest
the position (within MATCH_ARCSEC) when ../shared/data/gz_decals_votes is there, else a
synthetic galaxy seeded by the position. Failures are chosen by position, so one catalogue
can hold every case, or by a query flag (``mode=``) added to CUTOUT_URL:

    dec < -80             404, as outside the survey's footprint
    300 <= ra < 301       a blank (uniform black) JPEG
    310 <= ra < 311       slow: answers after SLOW_S seconds     (mode=slow)
    320 <= ra < 321       drops the connection without answering (mode=drop)
    330 <= ra < 331       drops the connection half-way through the body (mode=cut)
    340 <= ra < 341       503 for the first request at a position, then the image (mode=flaky)
                          mode=hold: holds each answer HOLD_S seconds (concurrency tests)
                          mode=clean: an image for every position (no failure by range)

Every request is recorded (path, headers) and the most requests in flight at once counted.
"""

from __future__ import annotations

import csv
import io
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from classifier.tests.utils import galaxy_jpeg

GZ_DECALS_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "gz_decals_votes"
MATCH_ARCSEC = 3.0
SLOW_S = 3.0
HOLD_S = 0.3


def blank_jpeg(side: int = 256) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (0, 0, 0)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class _Catalogue:
    """The GZ DECaLS positions and image files, when the shared data is there."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.ra = np.empty(0)
        self.dec = np.empty(0)
        labels = GZ_DECALS_DIR / "labels.csv"
        if not labels.is_file():
            return
        with labels.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if (GZ_DECALS_DIR / row["file"]).is_file()]
        self.paths = [GZ_DECALS_DIR / row["file"] for row in rows]
        self.ra = np.array([float(row["ra"]) for row in rows])
        self.dec = np.array([float(row["dec"]) for row in rows])

    @property
    def available(self) -> bool:
        return bool(self.paths)

    def nearest(self, ra: float, dec: float) -> Path | None:
        if not self.paths:
            return None
        # The haversine distance, good at any separation.
        r1, d1, r2, d2 = map(np.radians, (ra, dec, self.ra, self.dec))
        h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
        separation = np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600
        best = int(np.argmin(separation))
        return self.paths[best] if separation[best] <= MATCH_ARCSEC else None


CATALOGUE = _Catalogue()


class CutoutServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, object]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen_flaky: set[str] = set()
        self.thread = threading.Thread(target=self.serve_forever, name="cutout-server", daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def template(self, **flags: str) -> str:
        """A CUTOUT_URL for this server, with the Legacy Surveys framing and optional flags."""
        extra = "".join(f"&{key}={value}" for key, value in flags.items())
        return f"{self.base}/jpeg-cutout?ra={{ra}}&dec={{dec}}&layer=ls-dr10&pixscale=0.524&size=256{extra}"

    def hits(self, ra: float | None = None) -> list[dict[str, object]]:
        with self.lock:
            return [r for r in self.requests if ra is None or math.isclose(r["ra"], ra, abs_tol=1e-6)]


class _Handler(BaseHTTPRequestHandler):
    server: CutoutServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        try:
            ra, dec = float(query["ra"][0]), float(query["dec"][0])
        except (KeyError, ValueError):
            self._send(400, b"ra and dec are required", "text/plain")
            return
        mode = query.get("mode", [""])[0]
        server = self.server
        with server.lock:
            server.requests.append({"ra": ra, "dec": dec, "path": self.path, "headers": dict(self.headers)})
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            self._answer(ra, dec, mode)
        finally:
            with server.lock:
                server.in_flight -= 1

    def _answer(self, ra: float, dec: float, mode: str) -> None:
        server = self.server
        if mode == "clean":
            ra = dec = 0.0  # no failure range matches: every position gets one generated galaxy
        if mode == "hold":
            time.sleep(HOLD_S)
        if mode == "slow" or 310 <= ra < 311:
            time.sleep(SLOW_S)
        if mode == "drop" or 320 <= ra < 321:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if dec < -80:
            self._send(404, b"no imaging here", "text/plain")
            return
        if mode == "flaky" or 340 <= ra < 341:
            key = f"{ra:.6f},{dec:.6f}"
            with server.lock:
                first = key not in server.seen_flaky
                server.seen_flaky.add(key)
            if first:
                self._send(503, b"busy", "text/plain")
                return
        if 300 <= ra < 301:
            self._send(200, blank_jpeg(), "image/jpeg")
            return
        path = CATALOGUE.nearest(ra, dec)
        body = (
            path.read_bytes() if path is not None else galaxy_jpeg(seed=int(ra * 1e4 + dec * 1e2) % (2**32))
        )
        if mode == "cut" or 330 <= ra < 331:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(200, body, "image/jpeg")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def running_cutout_server(settings: Any) -> Iterator[CutoutServer]:
    """The stand-in service, running, with CUTOUT_URL pointed at it and quick timeouts
    (the root conftest's ``cutout_server`` fixture)."""
    server = CutoutServer()
    server.thread.start()
    settings.CUTOUT_URL = server.template()
    settings.CUTOUT_CONNECT_TIMEOUT_S = 2.0
    # Under SLOW_S, so the slow mode still times out, but far above a generated cutout's time
    # on a loaded machine: a retried read would count twice in the tests' fetch counts.
    settings.CUTOUT_READ_TIMEOUT_S = SLOW_S - 0.5
    settings.CUTOUT_RETRIES = 1
    settings.CUTOUT_BACKOFF_S = 0.05
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
