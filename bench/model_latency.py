"""Raw interpreter latency, batch throughput and peak RSS: our model against the proof of concept.

Baselines, rebuilt by this script from seeded random weights (timing needs no trained ones):
the proof of concept's Keras EfficientNetB0 at 224x224 with a 10-class head, converted to
TFLite with dynamic-range quantisation and a dynamic batch dimension, run (a) in
TensorFlow's own tf.lite.Interpreter (the process imports TensorFlow, as that project did)
and (b) in ai-edge-litert. Every measurement runs in its own subprocess, so peak RSS is
per model and runtime.

    python bench/model_latency.py [--quick] [--model PATH] [--tf-python PATH]

--tf-python is the interpreter with TensorFlow that builds the baseline and runs (a);
default this one (the dev venv has the training requirements). Everything else runs in
subprocesses that never import TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common as common
import numpy as np

POC_SEED = 6
POC_SIZE = 224
BATCH = 8


def build_poc(out: Path) -> None:
    """Runs under --tf-python: the proof of concept's model, exported the way it was."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(POC_SEED)
    base = tf.keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(POC_SIZE, POC_SIZE, 3), pooling="avg"
    )
    head = tf.keras.layers.Dense(10, activation="softmax")(base.output)
    model = tf.keras.Model(base.input, head)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    out.write_bytes(converter.convert())


def measure(runtime: str, model: Path, threads: int, iterations: int, batch_iterations: int) -> dict:
    started = time.perf_counter()
    if runtime == "tensorflow":
        import tensorflow as tf

        interpreter_class = tf.lite.Interpreter
    else:
        from ai_edge_litert.interpreter import Interpreter as interpreter_class  # noqa: N813
    interpreter = interpreter_class(model_path=str(model), num_threads=threads)
    interpreter.allocate_tensors()
    load_s = time.perf_counter() - started
    rss_loaded = common.rss_mb()
    details = interpreter.get_input_details()[0]
    output_index = interpreter.get_output_details()[0]["index"]
    shape = [int(s) for s in details["shape"]]
    rng = np.random.default_rng(0)
    single = rng.uniform(-1, 1, shape).astype(np.float32)

    def run(tensor: np.ndarray) -> None:
        interpreter.set_tensor(details["index"], tensor)
        interpreter.invoke()
        interpreter.get_tensor(output_index)

    for _ in range(5):
        run(single)
    latencies = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        run(single)
        latencies.append((time.perf_counter() - t0) * 1000.0)

    interpreter.resize_tensor_input(details["index"], [BATCH, *shape[1:]])
    interpreter.allocate_tensors()
    batch = rng.uniform(-1, 1, [BATCH, *shape[1:]]).astype(np.float32)
    run(batch)
    t0 = time.perf_counter()
    for _ in range(batch_iterations):
        run(batch)
    batch_s = time.perf_counter() - t0
    return {
        "runtime": runtime,
        "threads": threads,
        "input": shape,
        "load_s": load_s,
        "single_ms": common.summary_ms(latencies),
        "batch8_images_per_s": BATCH * batch_iterations / batch_s,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": common.peak_rss_mb(),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def serving_process(model: Path) -> dict:
    """The web app as a gunicorn worker holds it: Django set up, every URLconf view imported,
    the model loaded through classifier.predictions.inference and 8 real JPEGs classified."""
    import os
    import secrets

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "galaxysite.settings",
            "DJANGO_ENV_FILE": str(common.WORK_DIR / "no.env"),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_SECURE_HTTPS": "false",
            "MODEL_PATH": str(model),
            "MODEL_MANIFEST": str(common.manifest_for(model)),
        }
    )
    from django.core.wsgi import get_wsgi_application
    from django.urls import get_resolver

    get_wsgi_application()
    get_resolver().url_patterns  # noqa: B018 - importing every view, as the first request does
    from classifier.predictions.inference import get_classifier

    images = common.galaxy_jpegs(8, common.WORK_DIR / "images_256")
    classifier = get_classifier()
    for path in images:
        classifier.classify(path)
    classifier.classify_batch(images)
    return {
        "peak_rss_mb": common.peak_rss_mb(),
        "rss_mb": common.rss_mb(),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def child(python: str, *args: str) -> dict:
    command = [python, __file__, "--child", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def poc_model(tf_python: str) -> Path:
    path = common.WORK_DIR / f"poc_efficientnetb0_{POC_SIZE}_seed{POC_SEED}_dynamic_range.tflite"
    if not path.exists():
        common.WORK_DIR.mkdir(parents=True, exist_ok=True)
        common.say(f"building the proof-of-concept baseline with {tf_python} -> {path}")
        child(tf_python, "build-poc", "--out", str(path))
    return path


def main() -> None:
    parser = common.arg_parser(__doc__, section="model_latency", quick="few iterations")
    parser.add_argument("--tf-python", help="Python with TensorFlow for the baseline (see above)")
    parser.add_argument("--iterations", type=int, help="timed single-image calls per configuration")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--runtime", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-iterations", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "build-poc":
        build_poc(Path(args.out))
        common.say("{}")
        return
    if args.child == "serving":
        common.say(json.dumps(serving_process(Path(args.model))))
        return
    if args.child == "measure":
        result = measure(args.runtime, Path(args.model), args.threads, args.iterations, args.batch_iterations)
        common.say(json.dumps(result))
        return

    info = common.machine()
    busy = common.other_busy_processes()
    tf_python = common.tf_python(args.tf_python)
    ours = common.resolve_model(args.model)
    poc = poc_model(tf_python)
    iterations = args.iterations or (20 if args.quick else 200)
    batch_iterations = 3 if args.quick else 25
    configurations = [
        ("ours", "our model in ai-edge-litert", sys.executable, "ai-edge-litert", ours),
        ("poc_a", "PoC (a): EfficientNetB0 in tf.lite.Interpreter", tf_python, "tensorflow", poc),
        ("poc_b", "PoC (b): EfficientNetB0 in ai-edge-litert", sys.executable, "ai-edge-litert", poc),
    ]
    results: dict[str, dict[int, dict]] = {}
    for key, label, python, runtime, model in configurations:
        results[key] = {}
        for threads in (1, 2):
            common.say(f"measuring {label} at {threads} thread(s)")
            results[key][threads] = child(
                python,
                "measure",
                "--runtime",
                runtime,
                "--model",
                str(model),
                "--threads",
                str(threads),
                "--iterations",
                str(iterations),
                "--batch-iterations",
                str(batch_iterations),
            )

    common.say("measuring the peak RSS of a Django serving process with our model loaded")
    serving = child(sys.executable, "serving", "--model", str(ours))
    rows = []
    for key, label, python, _, model in configurations:
        one, two = results[key][1], results[key][2]
        rows.append(
            [
                label,
                "x".join(str(s) for s in one["input"][1:]),
                f"{one['single_ms']['p50']:.2f} / {one['single_ms']['p95']:.2f}",
                f"{two['single_ms']['p50']:.2f} / {two['single_ms']['p95']:.2f}",
                f"{one['batch8_images_per_s']:.1f} / {two['batch8_images_per_s']:.1f}",
                f"{one['peak_rss_mb']:.0f}",
                f"{model.stat().st_size / 1e6:.1f}",
                Path(python).parent.parent.name + ("" if not one["tensorflow_imported"] else ", imports TF"),
            ]
        )
    ours_p50 = results["ours"][1]["single_ms"]["p50"]
    one_thread = {key: results[key][1] for key in results}
    two_threads = {key: results[key][2] for key in results}
    ratios = [
        [
            "single image p50 at 1 thread, PoC (a) / ours",
            one_thread["poc_a"]["single_ms"]["p50"] / ours_p50,
            ">= 3",
        ],
        [
            "single image p50 at 1 thread, PoC (b) / ours",
            one_thread["poc_b"]["single_ms"]["p50"] / ours_p50,
            ">= 3",
        ],
        [
            "peak RSS, PoC (a) process / our process",
            one_thread["poc_a"]["peak_rss_mb"] / one_thread["ours"]["peak_rss_mb"],
            ">= 3",
        ],
        [
            "peak RSS, PoC (a) process / our Django serving process",
            one_thread["poc_a"]["peak_rss_mb"] / serving["peak_rss_mb"],
            ">= 3",
        ],
        [
            "batch-8 throughput at 2 threads, ours / PoC (a)",
            two_threads["ours"]["batch8_images_per_s"] / two_threads["poc_a"]["batch8_images_per_s"],
            "",
        ],
    ]
    body = "\n".join(
        [
            common.machine_line(info),
            (
                f"Our model: {common.model_label(ours)}. "
                f"{iterations} timed single-image calls after 5 warm-up calls, "
                f"{batch_iterations} batch-8 calls. {common.run_notes(args)}"
            ),
            *(["CPU contention at start: " + "; ".join(busy)] if busy else []),
            "",
            common.table(
                [
                    "model / runtime",
                    "input",
                    "1 image, 1 thread p50 / p95 ms",
                    "1 image, 2 threads p50 / p95 ms",
                    "batch 8, 1 / 2 threads images/s",
                    "peak RSS MB (1 thread)",
                    "file MB",
                    "venv",
                ],
                rows,
            ),
            "",
            (
                f"Our Django serving process (settings, every view imported, model loaded, 16 images "
                f"classified: what a gunicorn worker holds once it has served): "
                f"peak RSS {serving['peak_rss_mb']:.0f} MB."
            ),
            "",
            common.table(
                ["ratio (same run)", "value", "target"], [[r[0], f"{r[1]:.2f}x", r[2]] for r in ratios]
            ),
        ]
    )
    common.write_json(args.section, {"machine": info, "busy": busy, "results": results, "serving": serving})
    common.write_section(args.section, body)
    common.say(body)


if __name__ == "__main__":
    main()
