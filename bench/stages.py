"""Attribute py-spy samples of a gunicorn worker to the stages of an upload.

py-spy's raw (collapsed) output has one line per distinct stack, root first, with the
number of samples at the end; a frame reads ``function (path/to/file.py:line)``. Each
frame is matched against RULES; of the frames of a stack that match, the rule with the
highest priority names the stage, and among equals the deepest frame wins. So SQL issued
by the throttle counts as the throttle, not as the ORM; a sample in Pillow under the
model's preprocessing counts as decode + inference, and one under metadata stripping as
metadata stripping; a sample inside the view is never charged to the middleware that
encloses it (a middleware's own ``__call__`` frame ranks below the view), while the
work a middleware does in its process_request/process_response ranks above it.

    python bench/stages.py RAW [RAW ...]      # prints the table of stages
"""

# One rule per line reads better than wrapped regular expressions.
# ruff: noqa: E501
from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# (priority, stage, pattern over one frame "function (path:line)"); first matching rule of a
# frame gives that frame's (priority, stage).
RULES: list[tuple[int, str, str]] = [
    # What the upload is for.
    (
        9,
        "decode + inference",
        r"classifier/(core/)?preprocessing\.py|classifier/(core/)?inference\.py|classifier/core/interpreters\.py|classifier/core/decode\.py|classifier/core/jpeg\.py|ai_edge_litert|tflite",
    ),
    (9, "metadata stripping", r"classifier/(core/)?metadata(\.py|/)|classifier/(core/)?fits\.py"),
    # The answer beside the class: out-of-distribution features and the Galaxy Zoo fractions.
    (9, "out-of-distribution gate", r"classifier/(core/)?ood\.py"),
    (9, "Galaxy Zoo answer", r"classifier/core/galaxy_zoo\.py"),
    (9, "hashing", r"hashlib|\bsha256\b"),
    # Below the ORM: the file lock is an SQL statement, counted as SQL.
    (5, "storage (exists check, file write)", r"django/core/files/|classifier/(predictions/)?storage"),
    # Defences and bookkeeping around it.
    (
        9,
        "throttle",
        r"rest_framework/throttling\.py|classifier/(ops/)?throttles\.py|classifier/ops/cache\.py",
    ),
    (9, "authentication (DRF, auth)", r"rest_framework/authentication\.py|django/contrib/auth/|authtoken"),
    (9, "sessions", r"django/contrib/sessions/"),
    (9, "messages", r"django/contrib/messages/"),
    (9, "axes", r"axes/"),
    (
        9,
        "metrics (prometheus)",
        r"prometheus_client/|django_prometheus/middleware|record_(predictions|inference|refusals)",
    ),
    (9, "logging", r"logging/__init__\.py|RequestIdFilter"),
    (
        9,
        "request parsing (multipart, DRF request)",
        r"multipartparser|rest_framework/parsers\.py|rest_framework/request\.py|django/http/request\.py|uploadhandler|classifier/api/parsers",
    ),
    (
        9,
        "response (serialise, render)",
        r"rest_framework/renderers\.py|rest_framework/serializers\.py|rest_framework/fields\.py|rest_framework/response\.py|django/http/response\.py|classifier/api/serializers\.py|json/",
    ),
    (9, "translation", r"django/utils/translation/"),
    # Validation: its decode, hashing and header reads rank above it.
    (
        7,
        "upload validation (header check, other)",
        r"(validate_uploads|_validate|_read_upload|sanitise_filename) \(classifier/|inspect_header|classifier/validation|classifier/predictions/(filenames|upload_fields)\.py",
    ),
    # The database, wherever the frames above did not claim it.
    (6, "ORM + SQL (audit row, transaction, lock)", r"django/db/|psycopg|sqlite3|django_prometheus/db/"),
    # Middleware work: process_request/process_response/process_view and helpers (not __call__).
    (5, "middleware: csrf", r"^(?![\w.]*__call__ ).*django/middleware/csrf\.py"),
    (5, "middleware: security", r"^(?![\w.]*__call__ ).*django/middleware/security\.py"),
    (5, "middleware: common", r"^(?![\w.]*__call__ ).*django/middleware/common\.py"),
    (5, "middleware: locale", r"^(?![\w.]*__call__ ).*django/middleware/locale\.py"),
    (5, "middleware: clickjacking", r"^(?![\w.]*__call__ ).*django/middleware/clickjacking\.py"),
    (5, "middleware: CSP", r"^(?![\w.]*__call__ ).*csp/"),
    (5, "middleware: permissions policy", r"^(?![\w.]*__call__ ).*django_permissions_policy"),
    (5, "middleware: whitenoise", r"^(?![\w.]*__call__ ).*whitenoise/"),
    (
        5,
        "middleware: request size limit, db unavailable",
        r"^(?![\w.]*__call__ ).*classifier/(ops/)?middleware\.py",
    ),
    (5, "middleware: request id", r"^(?![\w.]*__call__ ).*classifier/ops/request_ids\.py"),
    # The view and Django's dispatch around it.
    (
        4,
        "view + services (other)",
        r"classifier/api/predictions\.py|classifier/predictions/services\.py|rest_framework/views\.py|rest_framework/permissions\.py|classifier/",
    ),
    (4, "URL resolving, handler", r"django/urls/|_get_response \(django/core/handlers/base\.py"),
    (3, "DRF (other)", r"rest_framework/"),
    # What remains: the chain of middleware itself, Django, gunicorn.
    (
        2,
        "middleware chain (MiddlewareMixin, exception wrappers, __call__)",
        r"django/utils/deprecation\.py|django/core/handlers/exception\.py|django/middleware/|csp/|whitenoise/|django_permissions_policy|classifier/ops/middleware\.py|classifier/ops/request_ids\.py",
    ),
    (1, "Django (WSGI handler, signals, other)", r"django/"),
    (1, "gunicorn (HTTP parsing, socket I/O)", r"gunicorn"),
]
OTHER = "other (Python runtime, numpy, threads)"
# py-spy's idle test misses a thread blocked in psycopg's wait (a poll on the socket) or in
# epoll: those samples are time waiting, not CPU, and are left out of the shares.
WAIT = "waiting (PostgreSQL replies, epoll, idle request threads): not CPU, not in the shares"
_WAITING = re.compile(
    r"^(Connection\.wait \(psycopg|\w*Selector\.select \(selectors|Condition\.wait|Lock\.acquire"
    r"|wait \(threading|_worker \(concurrent/futures/thread\.py:81\))"
)
CHAIN = RULES[-3][1]
# A middleware's own __call__ encloses everything after it, the view included: it is the chain.
_CONTAINER = re.compile(r"^[\w.]*__call__ \(.*(middleware|request_ids\.py|django_permissions_policy)")


def hashing_rules(app_dir: Path) -> list[tuple[int, str, str]]:
    """hashlib's digests run in C, so py-spy shows the Python line that calls them: these rules
    name those lines of the app under test as hashing."""
    extra = []
    for path in sorted((app_dir / "classifier").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "sha256(" in line and "def " not in line:
                relative = path.relative_to(app_dir).as_posix()
                extra.append((9, "hashing", re.escape(f"{relative}:{number})")))
    return extra


_compiled: list[tuple[int, str, re.Pattern[str]]] = []


def use_rules(extra: list[tuple[int, str, str]]) -> None:
    _compiled[:] = [(priority, stage, re.compile(pattern)) for priority, stage, pattern in [*extra, *RULES]]


use_rules([])


def frame_stage(frame: str) -> tuple[int, str] | None:
    if _CONTAINER.search(frame):
        return 2, CHAIN
    for priority, stage, pattern in _compiled:
        if pattern.search(frame):
            return priority, stage
    return None


def stack_stage(frames: list[str]) -> str:
    best: tuple[int, int, str] | None = None
    for depth, frame in enumerate(frames):
        match = frame_stage(frame)
        if match and (best is None or (match[0], depth) >= best[:2]):
            best = (match[0], depth, match[1])
    return best[2] if best else OTHER


def attribute(lines: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.strip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        counts[WAIT if frames and _WAITING.search(frames[-1]) else stack_stage(frames)] += int(count)
    return counts


def attribute_files(paths: Iterable[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in paths:
        counts.update(attribute(path.read_text().splitlines()))
    return counts


def rows(counts: Counter[str], cpu_ms_per_upload: float | None = None) -> list[list[str]]:
    """Table rows: stage, samples, share and, given the worker's measured CPU per upload, the
    share of it in milliseconds (samples are of non-idle threads, so they follow CPU)."""
    total = sum(count for stage, count in counts.items() if stage != WAIT) or 1
    out = []
    for stage, count in counts.most_common():
        if stage == WAIT:
            continue
        row = [stage, str(count), f"{count / total:.1%}"]
        if cpu_ms_per_upload is not None:
            row.append(f"{count / total * cpu_ms_per_upload:.2f}")
        out.append(row)
    if counts.get(WAIT):
        out.append([WAIT, str(counts[WAIT]), "-", *(["-"] if cpu_ms_per_upload is not None else [])])
    return out


def examples(lines: Iterable[str], per_stage: int = 3, tail: int = 3) -> dict[str, list[tuple[int, str]]]:
    """The commonest leaf frames of each stage, to check what a rule caught."""
    leaves: dict[str, Counter[str]] = {}
    for line in lines:
        stack, _, count = line.strip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaves.setdefault(stack_stage(frames), Counter())[" < ".join(reversed(frames[-tail:]))] += int(count)
    return {stage: counter.most_common(per_stage) for stage, counter in leaves.items()}


if __name__ == "__main__":
    use_rules(hashing_rules(Path(__file__).resolve().parent.parent))
    paths = [Path(p) for p in sys.argv[1:]]
    for row in rows(attribute_files(paths)):
        sys.stdout.write(" | ".join(row) + "\n")
    if True:
        lines = [line for path in paths for line in path.read_text().splitlines()]
        for stage, found in examples(lines).items():
            sys.stdout.write(f"\n## {stage}\n" + "".join(f"  {n}  {leaf[:300]}\n" for leaf, n in found))
