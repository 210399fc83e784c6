"""HTTP checks of the running compose stack, for docker/check.sh (make docker-check).

Standard library only: it runs on a fresh CI machine and, for the slow-client check straight
at gunicorn, inside the web container (`python - slow-clients ... < docker/check_stack.py`).

    ready         wait until /api/health/ready answers 200
    page          GET / over plain HTTP; expect 200, not a redirect to HTTPS
    upload        POST a PNG made here to /api/predictions/; expect 201 and one prediction
    slow-clients  open N sockets that each send half a request head, then time /api/health/live
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import struct
import sys
import time
import uuid
import zlib


def say(message: str, *, failure: bool = False) -> None:
    """A line for check.sh's log (the checks are a script, not a library)."""
    (sys.stderr if failure else sys.stdout).write(("FAIL " if failure else "") + message + "\n")


def request(
    args: argparse.Namespace, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    try:
        connection.request(method, path, body=body, headers={"Host": args.host_header, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def png(width: int = 96, height: int = 96) -> bytes:
    """A small RGB PNG: a bright, round blob on a dark sky, drawn without Pillow."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            distance = ((x - width / 2) ** 2 + (y - height / 2) ** 2) ** 0.5
            level = max(0, 255 - int(distance * 8))
            rows += bytes((level, level, max(level - 40, 0)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


def check_ready(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.wait
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = request(args, "GET", "/api/health/ready")
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                say(f"ready: 200 {body.decode()}")
                return 0
            last = f"HTTP {status} {body[:300].decode('utf-8', 'replace')}"
        time.sleep(1)
    say(f"ready: not 200 within {args.wait} s ({last})", failure=True)
    return 1


def check_page(args: argparse.Namespace) -> int:
    status, _ = request(args, "GET", "/")
    if status != 200:
        say(f"page: GET / answered HTTP {status} over plain HTTP", failure=True)
        return 1
    say("page: GET / 200 over plain HTTP")
    return 0


def check_upload(args: argparse.Namespace) -> int:
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="blob.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    # A client-sent X-Forwarded-For must not become the recorded address: the proxy replaces it.
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "X-Forwarded-For": args.spoofed_ip,
    }
    status, answer = request(args, "POST", "/api/predictions/", body, headers)
    if status != 201:
        say(f"upload: HTTP {status} {answer[:500].decode('utf-8', 'replace')}", failure=True)
        return 1
    prediction = json.loads(answer)["predictions"][0]
    name, answer_class, confidence = (
        prediction["filename"],
        prediction["prediction"],
        prediction["confidence"],
    )
    say(f"upload: 201, {name} -> {answer_class} ({confidence:.2f})")
    return 0


def half_open(args: argparse.Namespace) -> list[socket.socket]:
    sockets = []
    for _ in range(args.sockets):
        sock = socket.create_connection((args.host, args.port), timeout=5)
        sock.sendall(f"GET /api/health/live HTTP/1.1\r\nHost: {args.host_header}\r\nX-Slow: ".encode())
        sockets.append(sock)
    return sockets


def closed_by_server(sockets: list[socket.socket], within: float) -> int:
    """How many of the sockets the server closed (or answered and closed) within the time."""
    deadline = time.monotonic() + within
    closed = 0
    for sock in sockets:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            continue
        except OSError:
            pass  # reset: closed too
        closed += 1
    return closed


def check_slow_clients(args: argparse.Namespace) -> int:
    sockets = half_open(args)
    try:
        time.sleep(1)  # let the server read every half head
        started = time.monotonic()
        try:
            status, _ = request(args, "GET", "/api/health/live")
            answer = f"HTTP {status}"
        except OSError as exc:
            status, answer = 0, f"no answer ({exc.__class__.__name__})"
        elapsed = time.monotonic() - started
        say(f"slow clients: {args.sockets} half-sent heads; /api/health/live: {answer} after {elapsed:.2f} s")
        if status != 200:
            say(f"slow clients: no 200 within {args.timeout} s", failure=True)
            return 1
        if args.closed_within:
            closed = closed_by_server(sockets, args.closed_within)
            say(f"slow clients: the server closed {closed}/{len(sockets)} within {args.closed_within:.0f} s")
            if closed != len(sockets):
                say("slow clients: the server kept some half-sent requests open", failure=True)
                return 1
        return 0
    finally:
        for sock in sockets:
            sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("check", choices=["ready", "page", "upload", "slow-clients"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host-header", default="localhost", help="a name in DJANGO_ALLOWED_HOSTS")
    parser.add_argument("--timeout", type=float, default=5, help="seconds for one request")
    parser.add_argument("--wait", type=float, default=180, help="ready: seconds to wait")
    parser.add_argument("--spoofed-ip", default="203.0.113.77", help="upload: sent as X-Forwarded-For")
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument(
        "--closed-within", type=float, default=0, help="slow-clients: expect the server to close them"
    )
    args = parser.parse_args()
    checks = {
        "ready": check_ready,
        "page": check_page,
        "upload": check_upload,
        "slow-clients": check_slow_clients,
    }
    return checks[args.check](args)


if __name__ == "__main__":
    sys.exit(main())
