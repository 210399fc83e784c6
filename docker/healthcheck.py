"""The image's HEALTHCHECK: GET /api/health/ready from gunicorn inside the container.

Django answers 400 to a Host header that DJANGO_ALLOWED_HOSTS does not list, and operators
list their public names, rarely 127.0.0.1. So the probe connects to 127.0.0.1 but sends the
first allowed name as its Host. Standard library only: it runs every few seconds.
"""

from __future__ import annotations

import http.client
import os
import sys


def probe_host(allowed_hosts: str) -> str:
    """A Host header that Django accepts: the first listed name (".example.org" -> "example.org")."""
    for entry in allowed_hosts.split(","):
        name = entry.strip().lstrip(".")
        if name and name != "*":
            return name
    # Nothing listed: DEBUG allows localhost; "*" allows anything.
    return "localhost"


def main() -> int:
    port = int(os.environ.get("HEALTHCHECK_PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        host = probe_host(os.environ.get("DJANGO_ALLOWED_HOSTS", ""))
        connection.request("GET", "/api/health/ready", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(500).decode("utf-8", "replace")
    except OSError as exc:
        sys.stderr.write(f"not ready: {exc}\n")
        return 1
    finally:
        connection.close()
    if response.status != 200:
        sys.stderr.write(f"not ready: HTTP {response.status} {body}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
