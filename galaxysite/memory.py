"""Process-wide memory settings for the processes that decode images: gunicorn workers
(galaxysite/gunicorn.py) and Celery pool processes (classifier/jobs/tasks.py)."""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's mallopt() parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def limit_malloc() -> None:
    """Make freed image buffers go back to the system at once.

    glibc raises its mmap threshold after the first large free, so later decoded images
    come from heap arenas that keep their memory, one arena per thread: a worker's
    threads then hold several decode buffers at the same time, or one stays high after a
    request. A fixed 1 MiB threshold keeps large buffers mmapped (returned on free), and
    two arenas keep the threads' small allocations together (docs/uploads.md).
    Not glibc: nothing to do.
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return
    libc.mallopt(_M_ARENA_MAX, 2)
    libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
