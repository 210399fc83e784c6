"""GalaxyClassifier: a verified TFLite model, its manifest, and the classification of images.

Built from a typed ModelManifest and the model file it describes; the file's sha256 must be
the manifest's. Preprocessing takes the parameters stored in the manifest, so serving resizes
and normalises exactly as training did. The interpreters come from classifier.core.interpreters,
decoding and its limits from classifier.core.decode. Nothing here reads settings: the caller
passes the backend, the thread count, where the decode limits come from and what to do with
the inference timings (the Django service module is classifier.predictions.inference).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from classifier.core.decode import DecodeLimits, PreparedImage, prepare_image
from classifier.core.exceptions import ModelUnavailableError
from classifier.core.galaxy10 import CLASS_NAMES, NUM_CLASSES
from classifier.core.galaxy_zoo import QUESTIONS, galaxy_zoo_answer
from classifier.core.interpreters import InterpreterPool, interpreter_class
from classifier.core.manifest import ManifestError, ModelManifest
from classifier.core.ood import OodGate
from classifier.core.preprocessing import ImageSource

logger = logging.getLogger(__name__)

# Images per interpreter call: larger calls are a little faster per image, but every image in
# a call adds to a web worker's peak memory; 2 keeps most of the speed within the memory a
# worker may use (docs/benchmarks.md, "Batching in the interpreter").
MAX_BATCH_SIZE = 2


@dataclass(frozen=True)
class ClassificationResult:
    class_index: int
    class_name: str
    confidence: float
    probabilities: tuple[float, ...]
    inference_ms: float
    width: int
    height: int
    # Whether the image looks like the galaxy cutouts the model was trained on (classifier.core.ood);
    # None when the manifest has no fitted gate.
    in_distribution: bool | None = None
    ood_score: float | None = None
    # Classified in grey from a single-band FITS image; the model was trained on colour.
    single_band: bool = False
    # A FITS cube whose header names no bands: its planes were read as g, r, z (docs/fits.md).
    bands_assumed: bool = False
    # The answer in Galaxy Zoo's terms (classifier.core.galaxy_zoo.galaxy_zoo_answer): the four
    # groups' probabilities, and the main questions' vote fractions when the model predicts them.
    galaxy_zoo: dict[str, Any] | None = None


def _read_model(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelUnavailableError(f"model file {path} does not exist") from exc
    except OSError as exc:
        raise ModelUnavailableError(f"model file {path} is unreadable: {exc}") from exc


class GalaxyClassifier:
    """A loaded, verified TFLite model and the preprocessing it was trained with.

    ``limits`` is called on every prepare(), so limits that change while the process runs
    apply to the next image; ``record_inference`` is told the seconds per image and the
    number of images of every interpreter call. Raises ModelUnavailableError.
    """

    def __init__(
        self,
        *,
        manifest: ModelManifest,
        model_path: Path,
        backend: str = "auto",
        num_threads: int = 1,
        limits: Callable[[], DecodeLimits] = DecodeLimits,
        record_inference: Callable[[float, int], None] | None = None,
    ) -> None:
        self.manifest = manifest
        self.model_path = Path(model_path)
        self.model_version: str = manifest.model_version
        model_bytes = _read_model(self.model_path)
        self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        if self.model_sha256 != manifest.sha256:
            raise ModelUnavailableError(
                f"model file {self.model_path.name} has sha256 {self.model_sha256[:12]}…, "
                f"but the manifest expects {manifest.sha256[:12]}…"
            )
        # The manifest's schema has checked the ood section's names and shapes.
        self.ood_gate: OodGate | None = OodGate.from_section(manifest.ood)
        self._limits = limits
        self._record_inference = record_inference
        self._interpreter_class, self.backend_name = interpreter_class(backend)
        size = manifest.preprocessing.size
        # The vote fractions are read only where the manifest says what they answer.
        self._questions = None if manifest.galaxy_zoo is None else manifest.galaxy_zoo.questions
        self._pool = InterpreterPool(
            self._interpreter_class,
            model_bytes,
            input_shape=(size, size, 3),
            outputs=NUM_CLASSES,
            votes=None if manifest.galaxy_zoo is None else manifest.galaxy_zoo.answers,
            num_threads=num_threads,
        )
        logger.info("loaded model %s (%s) with %s", self.model_version, self.model_path, self.backend_name)

    @classmethod
    def from_files(
        cls,
        *,
        model_path: Path,
        manifest_path: Path,
        backend: str = "auto",
        num_threads: int = 1,
        limits: Callable[[], DecodeLimits] = DecodeLimits,
        record_inference: Callable[[float, int], None] | None = None,
    ) -> GalaxyClassifier:
        """The model in ``model_path`` with the manifest read from ``manifest_path``."""
        try:
            manifest = ModelManifest.read(Path(manifest_path))
        except ManifestError as exc:
            raise ModelUnavailableError(str(exc)) from exc
        return cls(
            manifest=manifest,
            model_path=model_path,
            backend=backend,
            num_threads=num_threads,
            limits=limits,
            record_inference=record_inference,
        )

    @property
    def interpreter_count(self) -> int:
        return self._pool.count

    def use_interpreters(self, count: int) -> None:
        """Hold at least ``count`` interpreters, so that many calls can run at once.

        Each one holds its own copy of the weights and activations (docs/benchmarks.md,
        "Thread counts and interpreters"), so web workers keep one; batch jobs ask for one
        per core.
        """
        self._pool.grow_to(count)

    def prepare(self, source: ImageSource, *, max_pixels: int | None = None) -> PreparedImage:
        """Decode and preprocess one image within the decode limits (``max_pixels``, when
        given, replaces theirs); raises ImageDecodeError for anything unusable."""
        limits = self._limits()
        if max_pixels is not None:
            limits = replace(limits, max_pixels=max_pixels)
        prepared = prepare_image(source, self.manifest.preprocessing, limits)
        if prepared.single_band:
            # Not a refusal: a grey cutout still gets a class, but a less trustworthy one (docs/fits.md).
            logger.warning(
                "classified a single-band FITS image (%sx%s) in grey: the model was trained on colour",
                prepared.width,
                prepared.height,
            )
        return prepared

    def classify(self, source: ImageSource) -> ClassificationResult:
        return self.classify_prepared([self.prepare(source)])[0]

    def classify_batch(self, sources: Iterable[ImageSource]) -> list[ClassificationResult]:
        return self.classify_prepared([self.prepare(source) for source in sources])

    def classify_prepared(self, images: Sequence[PreparedImage]) -> list[ClassificationResult]:
        results: list[ClassificationResult] = []
        for start in range(0, len(images), MAX_BATCH_SIZE):
            chunk = images[start : start + MAX_BATCH_SIZE]
            batch = np.stack([image.tensor for image in chunk]).astype(np.float32, copy=False)
            probabilities, fractions, elapsed_ms = self._run(batch)
            per_image_ms = elapsed_ms / len(chunk)
            if self._record_inference is not None:
                self._record_inference(per_image_ms / 1000.0, len(chunk))
            votes = [None] * len(chunk) if fractions is None else list(fractions)
            results.extend(
                self._result(row, vote_row, image, per_image_ms)
                for row, vote_row, image in zip(probabilities, votes, chunk, strict=True)
            )
        return results

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
        return self._pool.run(batch)

    def _result(
        self, row: np.ndarray, fractions: np.ndarray | None, image: PreparedImage, inference_ms: float
    ) -> ClassificationResult:
        # The model outputs probabilities (classifier.core.manifest.OUTPUT_KINDS). Renormalised in
        # float64 so the stored probabilities sum to 1 exactly enough to audit.
        row = np.clip(row, 0.0, None)
        row = row / row.sum()
        class_index = int(np.argmax(row))
        in_distribution = ood_score = None
        if self.ood_gate is not None:
            in_distribution, ood_score = self.ood_gate.judge(image.tensor, row, self.manifest.preprocessing)
        return ClassificationResult(
            class_index=class_index,
            class_name=CLASS_NAMES[class_index],
            confidence=float(row[class_index]),
            probabilities=tuple(float(p) for p in row),
            inference_ms=round(inference_ms, 3),
            width=image.width,
            height=image.height,
            in_distribution=in_distribution,
            ood_score=None if ood_score is None else round(ood_score, 3),
            single_band=image.single_band,
            bands_assumed=image.bands_assumed,
            galaxy_zoo=galaxy_zoo_answer(row, fractions, self._questions or QUESTIONS),
        )
