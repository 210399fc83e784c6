"""gunicorn's threaded worker, made to wait for a whole request head before it spends a thread.

gunicorn's gthread worker hands a connection to a thread as soon as its first bytes arrive,
and the thread then blocks reading the rest of the head with no time limit: a client that
sends half a head holds a thread for as long as it likes, and a few such sockets stop a
worker. Here the worker's event loop reads the head itself, without blocking, and gives the
connection to a thread only once the head is complete; a head that is not complete within
GUNICORN_HEADER_TIMEOUT seconds is dropped. Once a thread has it, every read and write of
the connection times out after GUNICORN_IO_TIMEOUT seconds without progress.

What remains (a client trickling its body or reading its response slowly holds a thread up
to GUNICORN_IO_TIMEOUT per byte) is the reverse proxy's job: SECURITY.md and docs/uploads.md.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from gunicorn.workers import gthread

# Far larger than any real request head; a longer one goes to a thread, where gunicorn's own
# limits (limit_request_line, limit_request_fields) refuse it.
MAX_BUFFERED_HEAD = 16 * 1024
HEADER_TIMEOUT = float(os.environ.get("GUNICORN_HEADER_TIMEOUT", "10"))
IO_TIMEOUT = float(os.environ.get("GUNICORN_IO_TIMEOUT", "30"))


@dataclass
class _PendingHead:
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class HeadBufferingThreadWorker(gthread.ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[gthread.TConn, _PendingHead] = {}

    def on_client_socket_readable(self, conn: gthread.TConn, client: Any) -> None:
        head = self._heads.get(conn)
        if head is None:
            if conn.initialized:
                # A kept-alive connection starting its next request: ours from now on.
                with self._lock:
                    try:
                        self._keep.remove(conn)
                    except ValueError:
                        return  # murder_keepalived closed it meanwhile
            head = self._heads[conn] = _PendingHead(deadline=time.monotonic() + HEADER_TIMEOUT)
        try:
            chunk = conn.sock.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        head.data += chunk
        if b"\r\n\r\n" not in head.data and len(head.data) < MAX_BUFFERED_HEAD:
            return
        del self._heads[conn]
        with self._lock:
            self.poller.unregister(client)
        conn.init()
        # The parser reads what was buffered here first, then the socket.
        conn.parser.unreader.unread(bytes(head.data))
        conn.sock.settimeout(IO_TIMEOUT)
        self._wrap_future(self.tpool.submit(self.handle, conn), conn)

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        now = time.monotonic()
        for conn, head in list(self._heads.items()):
            if head.deadline < now:
                self.log.info("dropped a connection whose request head took over %s s", HEADER_TIMEOUT)
                self._drop(conn)

    def _drop(self, conn: gthread.TConn) -> None:
        self._heads.pop(conn, None)
        with self._lock, contextlib.suppress(KeyError, ValueError, OSError):  # already gone
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()
