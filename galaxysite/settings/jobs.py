"""Classification jobs on Celery, and the cutouts fetched for positions (docs/positions.md).

galaxysite/celery.py reads the CELERY_* names here.
"""

from __future__ import annotations

from pathlib import Path

from galaxysite.settings.base import BASE_DIR, env

# With no broker configured, jobs go through a folder on this machine (kombu's filesystem
# transport), so `make run` runs them end to end with no server; CELERY_BROKER_URL=redis://...
# or amqp://... points every web process and worker at a shared broker instead.
# The host is there for kombu, which warns on every connection without one; galaxysite/celery.py
# completes a bare filesystem:// given in the environment.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
JOB_QUEUE_DIR = Path(env.str("JOB_QUEUE_DIR", default=str(BASE_DIR / "var" / "job-queue")))
# Images per task. A chunk is recorded in one transaction at its end, so a chunk cut short
# (its worker died) recorded nothing and is run again whole by the next delivery.
JOB_CHUNK_SIZE = env.int("JOB_CHUNK_SIZE", default=64)
# A chunk whose database or storage is down is retried with delays 1, 2, 4 ... growing to
# JOB_RETRY_DELAY_MAX_S: 20 retries ride out about 8 minutes of outage, after which the job
# fails with the reason.
JOB_MAX_RETRIES = env.int("JOB_MAX_RETRIES", default=20)
JOB_RETRY_DELAY_MAX_S = 30
# The longest one member may take inside a chunk, to size the Redis visibility timeout below:
# the slowest image the upload limits accept decodes, classifies and records in about 0.05 s
# here (docs/scaling.md); 1 s leaves room for a loaded machine and object storage round trips.
JOB_MEMBER_SECONDS = env.float("JOB_MEMBER_SECONDS", default=1.0)
# Every broker call of a web process or worker gives up after this many seconds (connecting,
# each Redis command, each AMQP read, write and publish confirmation): a broker that accepts
# connections and never answers costs a submission a few seconds and a 503, not a thread.
_BROKER_TIMEOUT_S = env.float("CELERY_BROKER_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_TIMEOUT = _BROKER_TIMEOUT_S
# One retry, on a fresh connection: a pooled one that a restarted RabbitMQ dropped fails at
# once, and the retry gets through. A publish then gives up within about 3 x the timeout
# above plus 0.5 s (the failed call, the reconnection, closing the dead connection): 6.5 s.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0.5,
    "interval_step": 0,
    "interval_max": 0.5,
}
if CELERY_BROKER_URL.startswith("filesystem:"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(JOB_QUEUE_DIR),
        "data_folder_out": str(JOB_QUEUE_DIR),
        "control_folder": str(JOB_QUEUE_DIR / "control"),
        "polling_interval": 0.2,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
    # Redis gives a chunk that was never acknowledged (its worker was killed, or its machine
    # lost) to another worker once it has been out this long. It must exceed the longest a
    # live worker holds a chunk, or that chunk runs twice (recorded once, paid twice): up to
    # JOB_RETRY_DELAY_MAX_S waiting for a retry's countdown, then the chunk itself at
    # JOB_MEMBER_SECONDS a member. 30 + 64 x 1 = 94 s by default, so a killed worker's chunk
    # runs again within 2 minutes (docs/scaling.md has the derivation, and what longer chunks
    # need). Set JOB_CHUNK_SIZE and JOB_MEMBER_SECONDS alike on web and worker machines.
    _VISIBILITY_TIMEOUT = env.int(
        "CELERY_VISIBILITY_TIMEOUT",
        default=round(JOB_RETRY_DELAY_MAX_S + JOB_MEMBER_SECONDS * JOB_CHUNK_SIZE),
    )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _VISIBILITY_TIMEOUT,
        # Every live worker (a survivor, or one started later) looks for overdue chunks this
        # often, whoever took them.
        "unacked_restore_interval": max(1, min(10, _VISIBILITY_TIMEOUT // 3)),
        "unacked_restore_throttle": 1,
        # The lock around a restore scan (milliseconds of work) outlives a worker killed while
        # holding it, holding back every redelivery until it expires: kombu's default is 300 s.
        # Two scans at once are harmless (each chunk is restored in a transaction that watches it).
        "unacked_mutex_expire": min(30, _VISIBILITY_TIMEOUT),
        "socket_timeout": _BROKER_TIMEOUT_S,
        "socket_connect_timeout": _BROKER_TIMEOUT_S,
    }
else:
    # RabbitMQ hands a chunk back as soon as its worker's connection drops (at once for a
    # killed process; after missed heartbeats, broker_heartbeat = 120 s, for a lost machine).
    # Publishes wait for the broker's confirmation, so a queued chunk is really queued.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "confirm_publish": True,
        "read_timeout": _BROKER_TIMEOUT_S,
        "write_timeout": _BROKER_TIMEOUT_S,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="jobs")
# At-least-once delivery: a chunk is acknowledged when it ends, and handed out again if the
# process running it dies (tasks.py relies on it).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
JOB_MAX_ARCHIVE_BYTES = env.int("JOB_MAX_ARCHIVE_BYTES", default=2 * 1024**3)
JOB_MAX_UNCOMPRESSED_BYTES = env.int("JOB_MAX_UNCOMPRESSED_BYTES", default=8 * 1024**3)
JOB_MAX_COMPRESSION_RATIO = env.int("JOB_MAX_COMPRESSION_RATIO", default=100)
JOB_MAX_MEMBERS = env.int("JOB_MAX_MEMBERS", default=200_000)

# Classify by position: the survey cutout service.
# A URL template with {ra} and {dec} in degrees. The default is the Legacy Surveys viewer's
# JPEG cutout at Galaxy10 DECaLS's framing: 256x256 pixels at 0.524"/pixel, g/r/z colour.
CUTOUT_URL = env.str(
    "CUTOUT_URL",
    default="https://www.legacysurvey.org/viewer/jpeg-cutout?ra={ra}&dec={dec}&layer=ls-dr10&pixscale=0.524&size=256",
)
CUTOUT_CONNECT_TIMEOUT_S = env.float("CUTOUT_CONNECT_TIMEOUT_S", default=3.0)
CUTOUT_READ_TIMEOUT_S = env.float("CUTOUT_READ_TIMEOUT_S", default=10.0)
CUTOUT_RETRIES = env.int("CUTOUT_RETRIES", default=2)
CUTOUT_BACKOFF_S = env.float("CUTOUT_BACKOFF_S", default=0.5)
# Fetches in flight at once per process (web worker or Celery pool process).
CUTOUT_MAX_CONCURRENT = env.int("CUTOUT_MAX_CONCURRENT", default=4)
# Named in the User-Agent so the survey's operators can reach whoever runs this site.
CUTOUT_CONTACT_URL = env.str("CUTOUT_CONTACT_URL", default="")
CUTOUT_CACHE_SECONDS = env.int("CUTOUT_CACHE_SECONDS", default=30 * 24 * 3600)
CUTOUT_MAX_BYTES = env.int("CUTOUT_MAX_BYTES", default=2 * 1024 * 1024)
