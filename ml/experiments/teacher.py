"""galamo's Galaxy10 CNN as a low-weight, group-level teacher on DECaLS training images.

    pip download --no-deps galamo==0.0.8 -d /tmp/galamo
    python -m ml.experiments.teacher --galamo-wheel /tmp/galamo/galamo-0.0.8-py3-none-any.whl \\
        --out ml/runs/teacher/galamo_gz_decals.json
    python -m ml.experiments.ablate --only teacher       # train.teacher_file points at that file

galamo learnt the real Galaxy10 class boundaries, but on SDSS images it agrees with the votes
only about 40% of the time (ml/experiments/peer.py), so it teaches nothing there. What it may add is
Galaxy10's own grouping on the survey we serve: its 4-group distribution (disturbed or merging,
smooth, face-on disk, edge-on) becomes a target, at a low weight, for the GZ DECaLS training
images only. Those images carry no other class target under the adaptation protocol, and they
are in no evaluation set: the file holds the training split's images and nothing else, and
training refuses a teacher entry for any image outside it.

The teacher is never served and never part of an ensemble: its training split is unknown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ml import sources as src
from ml.config import Config, add_data_arguments, load_config
from ml.dataset import TEACHER_SOURCE, collect_sources, serving_preprocess_config
from ml.evaluate import TFLiteModel
from ml.experiments.peer import convert_to_tflite, galamo_keras_file, peer_inputs
from ml.metrics import GROUP_MATRIX


def training_images(config: Config, data_root: Path) -> src.SourceSet:
    """The GZ DECaLS images of the training split, exactly as training splits them."""
    found = {s.name: s for s in collect_sources(config, data_root)}
    if TEACHER_SOURCE not in found:
        raise SystemExit(f"{TEACHER_SOURCE} not found under {data_root}")
    source = found[TEACHER_SOURCE]
    return source.subset(src.split_indices(source, config)["train"])


def predict(config: Config, data_root: Path, galamo_tflite: Path) -> dict[str, Any]:
    images = training_images(config, data_root)
    probs = TFLiteModel(galamo_tflite)(peer_inputs(images, serving_preprocess_config(config).crop_fraction))
    return {
        "source": TEACHER_SOURCE,
        "split": "train",
        "seed": config.seed,
        "teacher": "galamo 0.0.8 galamo/model2.keras (BSD-3-Clause)",
        "teacher_tflite_sha256": hashlib.sha256(galamo_tflite.read_bytes()).hexdigest(),
        "probabilities": {
            key: [round(float(p), 5) for p in row] for key, row in zip(images.keys, probs, strict=True)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--galamo-wheel", type=Path, help="galamo-0.0.8-py3-none-any.whl (else the installed galamo)"
    )
    parser.add_argument("--out", type=Path, default=Path("ml/runs/teacher/galamo_gz_decals.json"))
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as work:
        keras_file = galamo_keras_file(args.galamo_wheel, Path(work))
        table = predict(config, args.data_root, convert_to_tflite(keras_file, Path(work) / "galamo.tflite"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    groups = np.array(list(table["probabilities"].values())) @ GROUP_MATRIX
    print(f"{len(groups)} images; mean teacher group distribution {groups.mean(axis=0).round(3).tolist()}")


if __name__ == "__main__":
    main()
