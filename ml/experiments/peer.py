"""Our model against the pip-installable peer, galamo's Galaxy10 CNN, on the same images.

    pip download --no-deps galamo==0.0.8 -d /tmp/galamo     # BSD-3; not installed, only read
    python -m ml.experiments.peer --galamo-wheel /tmp/galamo/galamo-0.0.8-py3-none-any.whl \\
        --out ml/models/peer.json

galamo (PyPI, BSD-3-Clause) ships ``galamo/model2.keras``, a 6.5M-parameter CNN trained on
the real Galaxy10 DECaLS labels. It reads an image with OpenCV, resizes the whole frame to
128x128 with cv2.resize's default bilinear filter and divides by 255; ``peer_inputs``
does exactly that. Both models then run in the same TFLite runtime (galamo's Keras model is
converted to a float32 TFLite file here), so the latency columns compare like with like.

The images: the 30 Galaxy10 DECaLS dev images, and the test splits of every training source,
exactly as training split them (galamo may have trained on images like the dev ones; nothing
here is used for any choice). Each model gets its own framing of the same file: ours the
serving preprocessing with the source's crop (ml/README.md, "Framing"); galamo the same field
of view relative to the Galaxy10 frame, i.e. the source's crop divided by the serving crop, so
an SDSS galaxy fills galamo's frame as a Galaxy10 galaxy does, and a dev image is passed whole.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ml import sources as src
from ml.cache import load_image
from ml.config import Config, add_data_arguments, load_config
from ml.dataset import collect_sources, serving_preprocess_config
from ml.evaluate import DEV_SET, EvaluationSet, TFLiteModel, evaluate, evaluation_sets
from ml.model_card import peer_table, write_model_card
from ml.pipeline import MODEL_NAME, peer_results

GALAMO_MODEL = "galamo/model2.keras"
GALAMO_SIZE = 128


def galamo_keras_file(wheel: Path | None, work: Path) -> Path:
    """model2.keras from the installed galamo package, or read out of its wheel."""
    if wheel is None:
        import importlib.util

        spec = importlib.util.find_spec("galamo")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                "galamo is not installed: pass --galamo-wheel (pip download --no-deps galamo==0.0.8)"
            )
        return Path(next(iter(spec.submodule_search_locations))) / "model2.keras"
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(GALAMO_MODEL, work)
    return work / GALAMO_MODEL


def convert_to_tflite(keras_file: Path, out: Path) -> Path:
    """galamo's Keras model as a float32 TFLite file (no quantisation: its own numbers)."""
    import keras
    import tensorflow as tf

    model = keras.models.load_model(keras_file)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    out.write_bytes(converter.convert())
    return out


def peer_inputs(source: src.SourceSet, serving_crop: float) -> np.ndarray:
    """galamo's preprocessing (cv2 bilinear resize of the frame, /255) of the source's field of view."""
    import cv2

    fraction = min(1.0, source.crop_fraction / serving_crop)
    arrays = []
    for ref in source.images:
        pixels = np.asarray(load_image(ref).convert("RGB"))
        height, width = pixels.shape[:2]
        side = round(min(height, width) * fraction)
        top, left = (height - side) // 2, (width - side) // 2
        crop = np.ascontiguousarray(pixels[top : top + side, left : left + side])
        resized = cv2.resize(crop, (GALAMO_SIZE, GALAMO_SIZE))
        arrays.append(resized.astype(np.float32) / 255.0)
    return np.stack(arrays)


def latency_ms(
    models: dict[str, TFLiteModel], inputs: dict[str, np.ndarray], rounds: int
) -> dict[str, float]:
    """Median single-image invoke time of each model, measured interleaved so that both
    see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for index in range(rounds):
        for name, model in models.items():
            image = inputs[name][index % len(inputs[name])]
            start = time.perf_counter()
            model(image[None])
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def compare(config: Config, data_root: Path, ours: Path, galamo_tflite: Path, rounds: int) -> dict[str, Any]:
    found = collect_sources(config, data_root)
    sets = evaluation_sets(config, data_root, found, ("test",), with_dev=True)
    if not sets or sets[0].name != DEV_SET:
        raise SystemExit(f"the dev images are missing under {data_root}/galaxy10_decals_dev")
    serving_crop = serving_preprocess_config(config).crop_fraction
    peer_sets = [
        EvaluationSet(evaluation.name, evaluation.source, peer_inputs(evaluation.source, serving_crop))
        for evaluation in sets
    ]
    # One thread each: the serving configuration of a web worker.
    models = {"ours": TFLiteModel(ours, num_threads=1), "galamo": TFLiteModel(galamo_tflite, num_threads=1)}
    return {
        "metrics": {"ours": evaluate(models["ours"], sets), "galamo": evaluate(models["galamo"], peer_sets)},
        "latency_ms": latency_ms(models, {"ours": sets[0].inputs, "galamo": peer_sets[0].inputs}, rounds),
        "label_rule": "v2" if config.labels.read_spiral else "v1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument("--model", type=Path, default=Path("ml/models/galaxy10.tflite"))
    parser.add_argument(
        "--galamo-wheel", type=Path, help="galamo-0.0.8-py3-none-any.whl (else the installed galamo)"
    )
    parser.add_argument("--rounds", type=int, default=200, help="latency measurements per model")
    parser.add_argument(
        "--out",
        type=Path,
        help="write the results here as JSON; ml/models/peer.json goes into the model card",
    )
    parser.add_argument("--static-dir", type=Path, default=Path(__file__).resolve().parents[2] / "static")
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as work:
        keras_file = galamo_keras_file(args.galamo_wheel, Path(work))
        galamo_tflite = convert_to_tflite(keras_file, Path(work) / "galamo.tflite")
        results = compare(config, args.data_root, args.model, galamo_tflite, args.rounds)
    results["model"] = args.model.as_posix()
    results["model_sha256"] = hashlib.sha256(args.model.read_bytes()).hexdigest()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        refresh_model_card(args.out.parent, args.static_dir)
    print(peer_table(results))


def refresh_model_card(models_dir: Path, static_dir: Path) -> None:
    """Rewrite the card of the model packaged in ``models_dir`` with the comparison, when the
    comparison was run on that very file."""
    manifest_path = models_dir / f"{MODEL_NAME}.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        peer = peer_results(models_dir, manifest)
        if peer:
            write_model_card(manifest, models_dir / "MODEL_CARD.md", static_dir, peer)


if __name__ == "__main__":
    main()
