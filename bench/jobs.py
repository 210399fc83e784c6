"""Classification jobs on Celery workers against `manage.py classify`, on the same images, in one run.

On the same 1,000 real 256x256 galaxy JPEGs (bench/_common.galaxy_jpegs) and a fresh
PostgreSQL database (galaxy_bench_jobs, created and dropped here):
  the baseline: `manage.py classify` over the folder (whole process, and its rate after
  Python/Django/model start-up), without and with --save;
  a job of those images on one Celery worker with 1, then 2 pool processes (chunks of 64),
  submitted in this process as `submit_job` does: end-to-end time from the submit call to
  the last result, the steady rate (first to last result) and the fixed cost (end-to-end
  time minus images / steady rate), the CPU per image of every process the job runs in
  (worker, submitter, PostgreSQL, Redis) against classify's, and a 1-image job's
  submit-to-result time;
  a 10,000-image job on 2 processes, with the peak memory (RSS) of each worker process;
  what one chunk of 64 costs, part by part, in this process (docs/scaling.md uses these).
The broker is Redis database 1 (BENCH_JOBS_BROKER overrides; the queue is emptied first);
BENCH_JOBS_DATABASE names another database, so that two runs can share a PostgreSQL server.

    .venv/bin/python bench/jobs.py [--quick] [--images 1000] [--big 10000]
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common as common
import _server as server
import numpy as np
from PIL import Image

BROKER = os.environ.get("BENCH_JOBS_BROKER", "redis://127.0.0.1:6379/1")
DATABASE = os.environ.get("BENCH_JOBS_DATABASE", "galaxy_bench_jobs")
QUEUE = "jobs-bench"
CHUNK = 64


def distinct_jpegs(count: int, folder: Path) -> list[Path]:
    """``count`` JPEGs with different content: the 1,000 bench galaxies, then brightness variants."""
    base = common.galaxy_jpegs(1000, common.WORK_DIR / "images_256")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        if index < len(base):
            paths.append(base[index])
            continue
        path = folder / f"galaxy_{index:05d}.jpg"
        if not path.exists():
            with Image.open(base[index % len(base)]) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.int16) + index // len(base)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def link_folder(paths: list[Path], folder: Path) -> Path:
    # Hard links, not symbolic ones: a job's submission skips symbolic links (an input folder
    # must not reach files outside it), so a folder of them would be an empty job.
    folder.mkdir(parents=True)
    for path in paths:
        try:
            (folder / path.name).hardlink_to(path)
        except OSError:  # another file system
            shutil.copyfile(path, folder / path.name)
    return folder


def run_classify(env: dict[str, str], folder: Path, out: Path, *extra: str) -> tuple[float, float]:
    """The command's wall time and the CPU time it used (all its threads), in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "classify", str(folder), "--output", str(out), *extra],
        env=env,
        cwd=common.REPO,
        capture_output=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class Worker:
    """`celery -A galaxysite worker` with N pool processes, and its memory sampled while it runs."""

    def __init__(self, env: dict[str, str], processes: int, log: Path) -> None:
        self.processes = processes
        self.log = log
        with log.open("wb") as handle:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "galaxysite",
                    "worker",
                    f"--concurrency={processes}",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=INFO",
                ],
                env=env,
                cwd=common.REPO,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        self.peak_rss: dict[int, float] = {}
        self._sampling = threading.Event()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if " ready." in text and text.count("loaded model") >= self.processes:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{text[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("worker not ready in time")

    def start_sampling(self) -> None:
        self._sampling.set()
        threading.Thread(target=self._sample, daemon=True).start()

    def stop_sampling(self) -> None:
        self._sampling.clear()

    def _sample(self) -> None:
        while self._sampling.is_set():
            for pid in [self.process.pid, *common.child_pids(self.process.pid)]:
                with contextlib.suppress(OSError):
                    self.peak_rss[pid] = max(self.peak_rss.get(pid, 0.0), common.rss_mb(pid))
            time.sleep(0.25)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def run_job(paths: list[Path], worker: Worker) -> dict[str, float]:
    """Submit as `submit_job` does, wait for the end, and read the timings off the database.

    Also where the CPU went, per image: on a shared machine the wall-clock rates move with
    the other load, while the CPU a job needs per image (every process it runs in
    included) is what decides its rate on cores of its own.
    """
    from django.db.models import Max, Min

    from classifier.jobs import services as job_services
    from classifier.jobs.submissions import submission_from_paths
    from classifier.models import Job, Prediction

    with tempfile.TemporaryDirectory(prefix="galaxy_bench_job_") as tmp:
        folder = link_folder(paths, Path(tmp) / "images")
        submission = submission_from_paths([str(folder)])
        groups = {
            "workers": lambda: [worker.process.pid, *common.child_pids(worker.process.pid)],
            "submit": lambda: [os.getpid()],
            "PostgreSQL": lambda: common.pids_named("postgres"),
            "Redis": lambda: common.pids_named("redis-server"),
        }
        with common.CpuAccount(groups) as account:
            started_wall = time.time()
            started = time.perf_counter()
            job = job_services.job_create(name=submission.name, members=submission.members)
            submitted = time.perf_counter() - started
            while True:
                job.refresh_from_db()
                if not job.is_active:
                    break
                # The end is read off the job's finished_at, not this loop, so a slower poll
                # only spares the cores the workers use.
                time.sleep(0.1)
    if job.status != Job.Status.SUCCEEDED or job.done != len(paths):
        raise RuntimeError(f"job {job.pk} ended {job.status} with {job.done}/{job.total}: {job.error}")
    times = Prediction.objects.filter(job=job).aggregate(first=Min("created_at"), last=Max("created_at"))
    end_to_end = job.finished_at.timestamp() - started_wall
    span = (times["last"] - times["first"]).total_seconds()
    # Steady rate: the results after the first chunk's, over the time they took.
    steady = (len(paths) - CHUNK) / span if span > 0 and len(paths) > CHUNK else float("nan")
    return {
        "images": len(paths),
        "submit_s": submitted,
        "first_result_s": times["first"].timestamp() - started_wall,
        "end_to_end_s": end_to_end,
        "images_per_s": len(paths) / end_to_end,
        "steady_images_per_s": steady,
        "fixed_cost_s": end_to_end - len(paths) / steady if steady == steady else float("nan"),  # noqa: PLR0124
        "cpu_ms_per_image": account.per_item_ms(len(paths)),
    }


def chunk_costs(paths: list[Path]) -> dict[str, float]:
    """One chunk of 64 in this process: reading, decoding, the model, and the recording (the rest)."""
    import io

    from django.core.files import File
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from classifier.jobs import services as job_services
    from classifier.jobs.submissions import submission_from_paths
    from classifier.jobs.tasks import classify_chunk
    from classifier.models import JobMember
    from classifier.predictions import services
    from classifier.predictions.inference import get_classifier
    from galaxysite.celery import app

    classifier = get_classifier()
    results: dict[str, list[float]] = {
        "read": [],
        "decode": [],
        "model": [],
        "whole chunk": [],
        "queries": [],
    }
    for repeat in range(3):
        with tempfile.TemporaryDirectory(prefix="galaxy_bench_chunk_") as tmp:
            chosen = paths[repeat * CHUNK : (repeat + 1) * CHUNK]
            folder = link_folder(chosen, Path(tmp) / "images")
            submission = submission_from_paths([str(folder)])
            job = job_services.job_create(name="chunk", members=submission.members)
        members = list(JobMember.objects.filter(job=job).order_by("index"))
        t0 = time.perf_counter()
        blobs = [data for _, data in job_services.read_staged(members)]
        t1 = time.perf_counter()
        accepted = [services.validate_uploads([File(io.BytesIO(b), name="g.jpg")])[0] for b in blobs]
        t2 = time.perf_counter()
        classifier.classify_prepared([a.prepared for a in accepted])
        t3 = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            job_services.job_chunk_process(job_id=job.pk, start=0, stop=CHUNK)
        t4 = time.perf_counter()
        results["read"].append(t1 - t0)
        results["decode"].append(t2 - t1)
        results["model"].append(t3 - t2)
        results["whole chunk"].append(t4 - t3)
        results["queries"].append(len(queries))
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)
        started = time.perf_counter()
        for _ in range(200):
            classify_chunk.apply_async((0, 0, 0), queue="jobs-bench-publish")
        publish = (time.perf_counter() - started) / 200
        conn.default_channel.queue_purge("jobs-bench-publish")
    costs = {key: statistics.median(values) for key, values in results.items()}
    costs["record (whole chunk - read - decode - model)"] = max(
        0.0, costs["whole chunk"] - costs["read"] - costs["decode"] - costs["model"]
    )
    costs["publish one chunk message"] = publish
    return costs


def main() -> None:  # noqa: PLR0915
    parser = common.arg_parser(__doc__, section="jobs", quick="200 images, a 1,000-image big job")
    parser.add_argument("--images", type=int, help="images for the comparison (default 1000)")
    parser.add_argument("--big", type=int, help="images of the big job (default 10000)")
    args = parser.parse_args()
    count = args.images or (200 if args.quick else 1000)
    big = args.big or (1000 if args.quick else 10_000)
    info = common.machine()
    busy = common.other_busy_processes()
    model = common.resolve_model(args.model)
    common.say(f"preparing {big} images")
    all_paths = distinct_jpegs(max(count, big), common.WORK_DIR / "images_256_variants")
    paths = all_paths[:count]

    import redis

    if BROKER.startswith("redis://"):
        # A queue of the benchmark's own: no leftover chunk of another run may be measured.
        redis.Redis.from_url(BROKER).delete(QUEUE)
    with (
        tempfile.TemporaryDirectory(prefix="galaxy_bench_jobs_") as tmp,
        server.bench_database(DATABASE) as db_url,
    ):
        tmp_path = Path(tmp)
        env = server.app_env(
            database_url=db_url,
            model=model,
            media=tmp_path / "media",
            extra={
                "CELERY_BROKER_URL": BROKER,
                "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
                "JOB_CHUNK_SIZE": str(CHUNK),
                "DJANGO_LOG_LEVEL": "INFO",
            },
        )
        server.manage(env, "migrate", "--noinput")
        os.environ.update(env)
        import django

        django.setup()

        folder = link_folder(paths, tmp_path / "images")
        # Start-up: a run over one image (an empty folder is an error), whose one inference is
        # negligible against Python, Django and the model loading.
        one = link_folder(paths[:1], tmp_path / "one")
        common.say("classify: start-up, then the images without and with --save")
        startup = min(run_classify(env, one, tmp_path / "none.csv")[0] for _ in range(2))

        def classify(*extra: str) -> dict[str, float]:
            seconds, cpu = run_classify(env, folder, tmp_path / "out.csv", *extra)
            return {
                "seconds": seconds,
                "images_per_s": count / seconds,
                "images_per_s_after_startup": count / (seconds - startup),
                "cpu_ms_per_image": cpu * 1000 / count,
            }

        baseline = {"classify --save": classify("--save")}
        # The machine is shared: classify runs right before and after each job (worker idle),
        # and each job is compared with the mean of the two.
        around: list[dict[str, float]] = [classify()]
        jobs: dict[str, dict] = {}
        memory: dict[str, float] = {}
        for processes in (1, 2):
            common.say(f"job of {count} images on {processes} worker process(es)")
            worker = Worker(env, processes, tmp_path / f"worker{processes}.log")
            try:
                worker.wait_ready()
                name = f"{processes} process(es)"
                jobs[name] = run_job(paths, worker)
                around.append(classify())
                jobs[name]["classify_around"] = around[-2:]
                if processes == 2:
                    singles = [all_paths[count + i : count + i + 1] for i in range(3)]
                    latencies = [run_job(single, worker)["end_to_end_s"] for single in singles]
                    jobs["1-image job, 2 processes"] = {"end_to_end_s": statistics.median(latencies)}
                    common.say(f"job of {big} images on 2 worker processes")
                    worker.start_sampling()
                    name = f"{big:,}-image job, 2 processes"
                    jobs[name] = run_job(all_paths[:big], worker)
                    worker.stop_sampling()
                    around.append(classify())
                    jobs[name]["classify_around"] = around[-2:]
                    main_pid = worker.process.pid
                    memory = {
                        ("main process" if pid == main_pid else f"pool process {pid}"): rss
                        for pid, rss in sorted(worker.peak_rss.items())
                    }
            finally:
                worker.stop()
        for index, run in enumerate(around):
            baseline[f"classify (run {index + 1} of {len(around)})"] = run
        common.say("one chunk, part by part")
        costs = chunk_costs(all_paths)

    rows = [
        [
            name,
            f"{b['seconds']:.2f}",
            f"{b['images_per_s']:.0f}",
            f"{b['images_per_s_after_startup']:.0f}",
            f"{b['cpu_ms_per_image']:.2f}",
        ]
        for name, b in baseline.items()
    ]
    cpu_rows = []
    for name, job in jobs.items():
        if "images" not in job:
            continue
        cpu = job["cpu_ms_per_image"]
        own = sum(cpu[key] for key in ("workers", "submit", "PostgreSQL", "Redis"))
        classify_cpu = statistics.mean(run["cpu_ms_per_image"] for run in job["classify_around"])
        cpu_rows.append(
            [
                name,
                *(f"{cpu[key]:.2f}" for key in ("workers", "submit", "PostgreSQL", "Redis")),
                f"{own:.2f}",
                f"{classify_cpu:.2f}",
                f"{classify_cpu / own:.0%}",
                f"{cpu['other']:.2f}",
                f"{cpu['idle']:.2f}",
            ]
        )
    job_rows = []
    for name, job in jobs.items():
        if "images" not in job:
            continue
        whole = statistics.mean(run["images_per_s"] for run in job["classify_around"])
        after = statistics.mean(run["images_per_s_after_startup"] for run in job["classify_around"])
        job_rows.append(
            [
                name,
                f"{job['images']:,}",
                f"{job['end_to_end_s']:.2f}",
                f"{job['images_per_s']:.0f}",
                f"{whole:.0f} / {after:.0f}",
                f"{job['images_per_s'] / whole:.0%}",
                f"{job['steady_images_per_s']:.0f}",
                f"{job['steady_images_per_s'] / after:.0%}",
                f"{job['submit_s']:.2f}",
                f"{job['first_result_s']:.2f}",
                f"{job['fixed_cost_s']:.2f}",
            ]
        )
    one = jobs["1-image job, 2 processes"]["end_to_end_s"]
    cost_rows = [
        [name, f"{value * 1000:.1f} ms" if name != "queries" else f"{value:.0f}"]
        for name, value in costs.items()
    ]
    body = "\n".join(
        [
            common.machine_line(info),
            (
                f"Model: {common.model_label(model)}. {count} images 256x256 JPEG, chunks of {CHUNK}, broker "
                f"{BROKER.split('://')[0]}, PostgreSQL, media on the local disk. {common.run_notes(args)}"
            ),
            *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
            "",
            common.table(
                [
                    "baseline",
                    "seconds (whole process)",
                    "images/s",
                    f"after start-up ({startup:.2f} s)",
                    "CPU ms per image",
                ],
                rows,
            ),
            "",
            common.table(
                [
                    "job",
                    "images",
                    "submit to last result (s)",
                    "images/s",
                    "classify before and after it: whole process / after start-up (images/s)",
                    "of classify (whole process)",
                    "steady images/s",
                    "of classify after start-up",
                    "submit call (s)",
                    "first result (s)",
                    "fixed cost (s)",
                ],
                job_rows,
            ),
            "",
            common.table(
                [
                    "CPU ms per image, from submit to the end",
                    "worker processes",
                    "submitting process",
                    "PostgreSQL",
                    "Redis",
                    "the job, all of these",
                    "classify before and after it",
                    "classify / the job",
                    "other work on the machine",
                    "idle",
                ],
                cpu_rows,
            ),
            "",
            f"A 1-image job, submit to result, on the warm 2-process worker: {one:.2f} s (median of 3).",
            "",
            common.table(["peak RSS during the big job", "MB"], [[k, f"{v:.0f}"] for k, v in memory.items()]),
            "",
            common.table(["one chunk of 64, in one process (median of 3)", "cost"], cost_rows),
        ]
    )
    common.write_json(
        args.section,
        {
            "machine": info,
            "busy": busy,
            "baseline": baseline,
            "startup_s": startup,
            "jobs": jobs,
            "memory_mb": memory,
            "chunk_costs_s": costs,
        },
    )
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
