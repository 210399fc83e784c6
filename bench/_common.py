"""Helpers shared by the benchmark scripts (bench/*.py); standard library, numpy and Pillow only.

Every figure the benchmarks report is compared with a baseline measured in the
same run on the same machine, and every result block names that machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from classifier.core.preprocessing import PreprocessConfig

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DOCS = REPO / "docs" / "benchmarks.md"
# The checkout the app under test runs from (manage.py, gunicorn): this one unless
# BENCH_APP_DIR names another, e.g. a `git worktree` of a commit to compare with.
APP_DIR = Path(os.environ.get("BENCH_APP_DIR", str(REPO)))
# Scratch files (baseline model, images, JSON results); a fixed path so runs reuse them.
WORK_DIR = Path(os.environ.get("BENCH_WORK_DIR", "/tmp/galaxy_bench"))  # noqa: S108
SHIPPED_MODEL = REPO / "ml" / "models" / "galaxy10.tflite"
DEV_IMAGES = REPO.parent / "shared" / "data" / "galaxy10_decals_dev"


def arg_parser(doc: str | None, *, section: str, quick: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark shares: --model, --label, --section and, when the script
    has a smoke mode, --quick (``quick`` says what it does)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if quick:
        parser.add_argument("--quick", action="store_true", help=f"{quick}: a smoke test, not a measurement")
    parser.add_argument("--model", help="TFLite model (default: the shipped one)")
    parser.add_argument("--label", default="", help="a note on what this run varies, shown in the doc")
    parser.add_argument("--section", default=section, help="doc section name (to keep several runs)")
    return parser


def run_notes(args: argparse.Namespace) -> str:
    """The mode and the run's label, for the first lines of a result block."""
    mode = "QUICK (smoke test only)" if getattr(args, "quick", False) else "full"
    return f"Mode: {mode}." + (f" Run: {args.label}." if args.label else "")


def say(message: str = "") -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def machine() -> dict[str, str | int]:
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "load_1m_at_start": round(load[0], 2),
    }


def machine_line(info: dict[str, str | int]) -> str:
    return (
        f"Machine: {info['platform']}; CPU: {info['cpu']}; {info['cores']} cores; "
        f"Python {info['python']}; 1-minute load average at start {info['load_1m_at_start']}"
    )


def other_busy_processes() -> list[str]:
    """Processes that compete for the CPU (the training job), to note next to the figures."""
    result = subprocess.run(
        ["ps", "-eo", "pid,ni,pcpu,args", "--sort=-pcpu"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    busy = []
    for line in result.stdout.splitlines()[1:6]:
        parts = line.split(None, 3)
        if len(parts) == 4 and float(parts[2]) >= 20.0 and "bench/" not in parts[3]:
            busy.append(f"pid {parts[0]} ({parts[2]}% CPU): {parts[3][:80]}")
    return busy


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
    }


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM: the peak resident set of a process, in MB (10^6 bytes)."""
    return _status_kb(pid, "VmHWM") / 1000.0


def rss_mb(pid: int | str = "self") -> float:
    return _status_kb(pid, "VmRSS") / 1000.0


def _status_kb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return float("nan")


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(c) for c in text)
    return children


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time a process (all its threads) has used so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of proc(5), counted after the ") " that ends the command name.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def pids_named(command: str) -> list[int]:
    """Every process whose command name (comm) is ``command``, e.g. all PostgreSQL backends."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _CLOCK_TICKS


class CpuAccount:
    """Where the machine's CPU went during a measured stretch, per group of processes.

    Groups are given as functions returning pids, re-read at the end so processes that
    appeared mid-way (a new PostgreSQL backend) are counted; a process that exited
    mid-way is not, which the "other" share absorbs.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.start: dict[int, float] = {}
        self.busy_start = 0.0
        self.wall_start = 0.0

    def __enter__(self) -> CpuAccount:
        self.start = {pid: cpu_seconds(pid) for pids in self.groups.values() for pid in pids()}
        self.busy_start = machine_busy_seconds()
        self.wall_start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall_start
        self.busy = machine_busy_seconds() - self.busy_start
        self.used = {
            name: sum(cpu_seconds(pid) - self.start.get(pid, 0.0) for pid in pids())
            for name, pids in self.groups.items()
        }

    def per_item_ms(self, items: int) -> dict[str, float]:
        shares = {name: seconds * 1000 / items for name, seconds in self.used.items()}
        shares["other"] = max(self.busy - sum(self.used.values()), 0.0) * 1000 / items
        shares["idle"] = max(self.wall * (os.cpu_count() or 1) - self.busy, 0.0) * 1000 / items
        return shares


def resolve_model(path: str | None) -> Path:
    return Path(path) if path else SHIPPED_MODEL


def model_label(model: Path) -> str:
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:12]
    if model.resolve() == SHIPPED_MODEL.resolve():
        return f"shipped model ({model.relative_to(REPO)}, sha256 {digest}...)"
    return f"{model} (sha256 {digest}...)"


def manifest_for(model: Path) -> Path:
    """The model's manifest: the one beside it, or, for a model without one (a candidate
    exported by hand), one written to the work dir that describes the file as it is."""
    beside = model.with_suffix(".json")
    if beside.exists():
        return beside
    from ai_edge_litert.interpreter import Interpreter

    from classifier.core.manifest import ModelManifest
    from classifier.core.preprocessing import PreprocessConfig

    size = int(Interpreter(model_path=str(model)).get_input_details()[0]["shape"][1])
    manifest = ModelManifest.create(
        model_file=model.name,
        model_version=f"bench-{model.stem}",
        sha256=hashlib.sha256(model.read_bytes()).hexdigest(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        # Serving's default preprocessing at the model's input size.
        preprocessing=PreprocessConfig(size=size),
        metrics={},
        provenance={"note": "benchmark model without a manifest: timing only, accuracy unknown"},
        training={},
    )
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = WORK_DIR / f"{model.stem}.manifest.json"
    manifest.write(path)
    return path


def model_preprocessing(model: Path) -> PreprocessConfig:
    """The preprocessing the model's manifest declares, checked as serving checks it."""
    from classifier.core.manifest import ModelManifest

    return ModelManifest.read(manifest_for(model)).preprocessing


def galaxy_jpegs(count: int, folder: Path) -> list[Path]:
    """``count`` distinct 256x256 JPEGs: the real dev galaxies, flipped, rotated and shifted
    so every file has different content; generated noise galaxies when the data is absent."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) >= count:
        return existing[:count]
    sources = sorted(DEV_IMAGES.glob("*.jpg")) if DEV_IMAGES.is_dir() else []
    rng = np.random.default_rng(20261126)
    paths = []
    for index in range(count):
        if sources:
            with Image.open(sources[index % len(sources)]) as original:
                image = original.convert("RGB").resize((256, 256))
            variant = index // len(sources)
            if variant % 2:
                image = ImageOps.mirror(image)
            image = image.rotate(90 * ((variant // 2) % 4))
            shift = (variant // 8) % 7 - 3
            image = image.transform(image.size, Image.Transform.AFFINE, (1, 0, shift, 0, 1, -shift))
        else:
            image = _generated_galaxy(rng)
        path = folder / f"galaxy_{index:05d}.jpg"
        image.save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def _generated_galaxy(rng: np.random.Generator) -> Image.Image:
    y, x = np.mgrid[-1:1:256j, -1:1:256j]
    angle = rng.uniform(0, np.pi)
    ratio = rng.uniform(0.3, 1.0)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / ratio
    light = np.exp(-((u**2 + v**2) ** 0.5) / rng.uniform(0.05, 0.2))
    colour = np.stack([light * c for c in rng.uniform(0.6, 1.0, 3)], axis=-1)
    noisy = colour * 230 + rng.normal(0, 6, colour.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(path: Path) -> bytes:
    return path.read_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def tf_python(requested: str | None) -> str:
    """The interpreter with TensorFlow: the one asked for, else this one (the dev venv has the
    training requirements)."""
    return requested or sys.executable


def write_section(name: str, body: str) -> None:
    """Replace (or append) the block between this benchmark's markers in docs/benchmarks.md."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    if "BENCH_APP_DIR" in os.environ:
        command = f"BENCH_APP_DIR={os.environ['BENCH_APP_DIR']} {command}"
    block = f"{start}\n_Written by `{command}` at {stamp}._\n\n{body.strip()}\n{end}"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def write_json(name: str, data: dict) -> Path:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = WORK_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def py_spy(pid: int, output: Path, seconds: int, *, rate: int) -> subprocess.Popen:
    """py-spy sampling ``pid`` for ``seconds`` into a raw (collapsed stacks) file, without
    pausing it (--nonblocking), so the profiled worker keeps its real timing."""
    return subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(output),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
