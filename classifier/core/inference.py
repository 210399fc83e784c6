"""The one TFLite inference module of the web app.

The model (a .tflite file plus its JSON manifest) is loaded lazily, once per
process, on first use: never at import, in wsgi.py or in AppConfig.ready, so the
app starts and reports the reason even when the model is broken. Preprocessing
comes from classifier.core.preprocessing with the parameters stored in the manifest,
so serving resizes and normalises exactly as training did.

A TFLite interpreter is not thread-safe: every set_tensor -> invoke -> get_tensor
sequence runs on an interpreter checked out of the classifier's idle queue, which
acts as the lock around invoke(), so concurrent requests in a threaded worker never
see each other's tensors. A web worker holds one interpreter (its requests take
turns); `manage.py classify` asks for one per core and runs them side by side.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext_noop
from PIL import Image, PngImagePlugin

from classifier.core import fits, jpeg
from classifier.core.exceptions import Count, ModelUnavailableError
from classifier.core.galaxy10 import CLASS_NAMES, NUM_CLASSES
from classifier.core.manifest import ManifestError, ModelManifest
from classifier.core.ood import OodGate
from classifier.core.preprocessing import (
    ImageDecodeError,
    ImageSource,
    decoded_bytes,
    exif_orientation,
    open_image,
    preprocess_image,
)
from classifier.ops import observability

logger = logging.getLogger(__name__)

# Pillow inflates a PNG's zTXt and iTXt chunks as it opens the file, up to 64 MB of them by
# default and outside the decode budget: a 67 kB upload held 65 MB for about a second. Nothing
# reads them (the stored copy drops them, classifier.core.metadata); more than this is refused.
PngImagePlugin.MAX_TEXT_MEMORY = 256 * 1024

BACKEND_AI_EDGE_LITERT = "ai-edge-litert"
BACKEND_TFLITE_RUNTIME = "tflite-runtime"
BACKEND_CHOICES = ("auto", BACKEND_AI_EDGE_LITERT, BACKEND_TFLITE_RUNTIME)
# Images per interpreter call: larger calls are a little faster per image, but every image in
# a call adds to a web worker's peak memory; 2 keeps most of the speed within the 150 MB a
# worker may use (docs/benchmarks.md, "Batching in the interpreter").
MAX_BATCH_SIZE = 2
# Formats accepted from uploads, with the extension the stored copy gets. Anything
# else Pillow could open (EPS, PSD, ICO, ...) is refused: a smaller attack surface.
ACCEPTED_FORMATS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "TIFF": "tif",
    "BMP": "bmp",
    # Read by classifier.core.fits (astropy), not Pillow; stored as sent.
    "FITS": "fits",
}
_ORIENTATIONS_SWAPPING_AXES = {5, 6, 7, 8}


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


@dataclass(frozen=True)
class PreparedImage:
    """A decoded, validated image: the model input and the upright size of the original."""

    tensor: np.ndarray
    width: int
    height: int
    image_format: str
    # A single-band FITS image, classified in grey (docs/fits.md).
    single_band: bool = False
    # The ICRS (ra, dec) of a FITS image's centre, from its celestial WCS (docs/positions.md).
    sky_centre: tuple[float, float] | None = None
    # A FITS cube without BAND keywords, read as g, r, z.
    bands_assumed: bool = False


@dataclass
class _Interpreter:
    """One TFLite interpreter and the batch size its tensors are allocated for."""

    interpreter: Any
    batch_size: int = 1


def _interpreter_class(preference: str) -> tuple[type, str]:
    if preference not in BACKEND_CHOICES:
        raise ModelUnavailableError(
            f"TFLITE_BACKEND={preference!r} is not one of {', '.join(BACKEND_CHOICES)}"
        )
    if preference in ("auto", BACKEND_AI_EDGE_LITERT):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            if preference != "auto":
                raise ModelUnavailableError(f"ai-edge-litert is not installed: {exc}") from exc
        else:
            return Interpreter, BACKEND_AI_EDGE_LITERT
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError as exc:
        raise ModelUnavailableError(
            "no TFLite backend is installed (pip install ai-edge-litert or tflite-runtime)"
        ) from exc
    return Interpreter, BACKEND_TFLITE_RUNTIME


def _read_bytes(source: ImageSource) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | Path) or hasattr(source, "__fspath__"):
        return Path(source).read_bytes()
    if hasattr(source, "seek"):
        source.seek(0)
    return source.read()


def inspect_header(data: bytes, *, max_pixels: int) -> tuple[int, int, str]:
    """Width and height after EXIF rotation and the format, read before any decoding.

    Refuses images with more than ``max_pixels`` pixels, so a decompression bomb
    (a tiny file with huge dimensions) is never decoded.
    """
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
            image_format = header.format or ""
            orientation = exif_orientation(header)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            gettext_noop("the image has too many pixels (limit %(limit)s)"), limit=Count(max_pixels)
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(gettext_noop("not a recognised image format")) from exc
    if image_format not in ACCEPTED_FORMATS:
        accepted = ", ".join(ACCEPTED_FORMATS)
        if not image_format:
            raise ImageDecodeError(
                gettext_noop("this images are not accepted (accepted: %(accepted)s)"), accepted=accepted
            )
        raise ImageDecodeError(
            gettext_noop("%(format)s images are not accepted (accepted: %(accepted)s)"),
            format=image_format,
            accepted=accepted,
        )
    if width <= 0 or height <= 0:
        raise ImageDecodeError(gettext_noop("the image has no pixels"))
    if width * height > max_pixels:
        raise ImageDecodeError(
            gettext_noop("the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels"),
            width=width,
            height=height,
            limit=Count(max_pixels),
        )
    if orientation in _ORIENTATIONS_SWAPPING_AXES:
        width, height = height, width
    return width, height, image_format


def _file_sha256(path: Path) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _load_manifest(manifest_path: Path) -> ModelManifest:
    try:
        return ModelManifest.read(manifest_path)
    except ManifestError as exc:
        raise ModelUnavailableError(str(exc)) from exc


class _DecodeBudget:
    """The decoded-image memory that this process's threads may hold at once.

    A threaded worker decodes several uploads side by side; each reserves its decoded
    size (preprocessing.decoded_bytes) and waits while the others' reservations would
    exceed the capacity, so the memory a worker spends on decoding stays bounded however
    many large images arrive together. Decoding is quick and bounded by the pixel and
    decode limits, so a wait is short.
    """

    def __init__(self) -> None:
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, *, capacity: int) -> Iterator[None]:
        with self._changed:
            # With nothing reserved any single image may go, so no reservation waits forever.
            while self._used and self._used + nbytes > capacity:
                self._changed.wait()
            self._used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self._used -= nbytes
                self._changed.notify_all()


_DECODE_BUDGET = _DecodeBudget()


def _fits_layout(data: bytes, *, max_pixels: int) -> fits.FitsLayout:
    """The FITS image's layout, every header size and the decoding cost checked against the limits."""
    layout = fits.inspect(data, max_pixels=max_pixels)
    cost = layout.decoded_bytes()
    max_bytes = settings.MAX_DECODE_BYTES
    if cost > max_bytes:
        raise ImageDecodeError(
            gettext_noop(
                "the FITS image is %(shape)s values of %(bitpix)s bits and would need %(needed)s MB "
                "of memory to decode, more than the limit of %(limit)s MB: send a smaller cutout"
            ),
            shape="x".join(str(n) for n in layout.shape),
            bitpix=abs(layout.bitpix),
            needed=f"{cost / 1e6:,.0f}",
            limit=f"{max_bytes / 1e6:,.0f}",
        )
    return layout


def _fits_decode_reserved(layout: fits.FitsLayout) -> AbstractContextManager[None]:
    capacity = max(settings.DECODE_MEMORY_BUDGET, settings.MAX_DECODE_BYTES)
    return _DECODE_BUDGET.reserve(layout.decoded_bytes(), capacity=capacity)


def fits_preview_png(data: bytes) -> bytes:
    """A stored FITS upload coloured as PNG for pages, under the same limits and decode budget
    as an upload (the limits may have changed since it was stored); raises ImageDecodeError."""
    layout = _fits_layout(data, max_pixels=settings.MAX_IMAGE_PIXELS)
    with _fits_decode_reserved(layout):
        return fits.preview_png(data, layout)


class GalaxyClassifier:
    """A loaded, verified TFLite model and the preprocessing it was trained with."""

    def __init__(
        self,
        *,
        model_path: Path,
        manifest_path: Path,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        self.model_path = Path(model_path)
        self.model_manifest = _load_manifest(Path(manifest_path))
        # The whole document as a dict, for the pages that show its free-form sections.
        self.manifest: dict[str, Any] = self.model_manifest.as_dict()
        self.model_version: str = self.model_manifest.model_version
        self.config = self.model_manifest.preprocessing
        try:
            model_bytes, self.model_sha256 = _file_sha256(self.model_path)
        except FileNotFoundError as exc:
            raise ModelUnavailableError(f"model file {self.model_path} does not exist") from exc
        except OSError as exc:
            raise ModelUnavailableError(f"model file {self.model_path} is unreadable: {exc}") from exc
        if self.model_sha256 != self.model_manifest.sha256:
            raise ModelUnavailableError(
                f"model file {self.model_path.name} has sha256 {self.model_sha256[:12]}…, "
                f"but the manifest expects {self.model_manifest.sha256[:12]}…"
            )
        try:
            self.ood_gate: OodGate | None = OodGate.from_manifest(self.manifest.get("ood"))
        except ValueError as exc:
            raise ModelUnavailableError(f"model manifest {exc}") from exc

        self._interpreter_class, self.backend_name = _interpreter_class(backend)
        self._model_bytes = model_bytes
        self._num_threads = num_threads
        # Interpreters not in use. Taking one out is the lock around its invoke(): a call
        # waits here until one is free, and no two threads ever hold the same one.
        self._idle: queue.SimpleQueue[_Interpreter] = queue.SimpleQueue()
        self._pool_lock = threading.Lock()
        self.interpreter_count = 0
        self._add_interpreter()
        logger.info("loaded model %s (%s) with %s", self.model_version, self.model_path, self.backend_name)

    def _add_interpreter(self) -> None:
        try:
            # The verified bytes are the ones loaded: no window for the file to change.
            interpreter = self._interpreter_class(
                model_content=self._model_bytes, num_threads=self._num_threads
            )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(f"the TFLite model could not be loaded: {exc}") from exc
        input_details = interpreter.get_input_details()[0]
        output_details = interpreter.get_output_details()[0]
        expected_input = [1, self.config.size, self.config.size, 3]
        if list(input_details["shape"]) != expected_input or input_details["dtype"] != np.float32:
            raise ModelUnavailableError(
                f"model input is {list(input_details['shape'])} {input_details['dtype'].__name__}, "
                f"expected {expected_input} float32"
            )
        if list(output_details["shape"]) != [1, NUM_CLASSES]:
            raise ModelUnavailableError(
                f"model output is {list(output_details['shape'])}, expected [1, {NUM_CLASSES}]"
            )
        self._input_index = input_details["index"]
        self._output_index = output_details["index"]
        self._idle.put(_Interpreter(interpreter))
        self.interpreter_count += 1

    def use_interpreters(self, count: int) -> None:
        """Hold at least ``count`` interpreters, so that many calls can run at once.

        Each one holds its own copy of the weights and activations (docs/benchmarks.md,
        "Thread counts and interpreters"), so web workers keep one; batch jobs ask for one
        per core.
        """
        with self._pool_lock:
            while self.interpreter_count < count:
                self._add_interpreter()

    def prepare(self, source: ImageSource, *, max_pixels: int | None = None) -> PreparedImage:
        """Decode and preprocess one image; raises ImageDecodeError for anything unusable,
        including an image whose decoding would need more than MAX_DECODE_BYTES."""
        limit = settings.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
        data = _read_bytes(source)
        if not data:
            raise ImageDecodeError(gettext_noop("the file is empty"))
        if fits.is_fits(data):
            return self._prepare_fits(data, max_pixels=limit)
        # Read from the markers before Pillow parses anything, so a file of thousands of
        # scans or segments is refused without being walked by Pillow or libjpeg (classifier.core.jpeg).
        layout = jpeg.inspect(data) if jpeg.is_jpeg(data) else None
        width, height, image_format = inspect_header(data, max_pixels=limit)
        try:
            image = open_image(data, self.config)
            cost = decoded_bytes(image)
            max_bytes = settings.MAX_DECODE_BYTES
            if layout is not None and layout.buffered:
                # Draft mode shrinks the output, not the full-size coefficient buffer that a
                # progressive or multi-scan JPEG is decoded into.
                cost += layout.coefficient_bytes()
                if cost > max_bytes:
                    raise ImageDecodeError(
                        gettext_noop(
                            "the image is a progressive or multi-scan JPEG of %(width)sx%(height)s pixels "
                            "and would need %(needed)s MB of memory to decode, more than the limit of "
                            "%(limit)s MB: send a smaller image, or a baseline JPEG"
                        ),
                        width=layout.width,
                        height=layout.height,
                        needed=f"{cost / 1e6:,.0f}",
                        limit=f"{max_bytes / 1e6:,.0f}",
                    )
            if cost > max_bytes:
                raise ImageDecodeError(
                    gettext_noop(
                        "the image is %(width)sx%(height)s pixels in %(mode)s mode and would need "
                        "%(needed)s MB of memory to decode, more than the limit of %(limit)s MB: "
                        "send a smaller image, or a JPEG"
                    ),
                    width=width,
                    height=height,
                    mode=image.mode,
                    needed=f"{cost / 1e6:,.0f}",
                    limit=f"{max_bytes / 1e6:,.0f}",
                )
            with _DECODE_BUDGET.reserve(cost, capacity=max(settings.DECODE_MEMORY_BUDGET, max_bytes)):
                tensor = preprocess_image(image, self.config)
        except Image.DecompressionBombError as exc:
            raise ImageDecodeError(
                gettext_noop("the image has too many pixels (limit %(limit)s)"), limit=Count(limit)
            ) from exc
        return PreparedImage(tensor=tensor, width=width, height=height, image_format=image_format)

    def _prepare_fits(self, data: bytes, *, max_pixels: int) -> PreparedImage:
        layout = _fits_layout(data, max_pixels=max_pixels)
        with _fits_decode_reserved(layout):
            rgb = fits.read_rgb(data, layout)
            tensor = preprocess_image(Image.fromarray(rgb, "RGB"), self.config)
        if layout.band_count == 1:
            # Not a refusal: a grey cutout still gets a class, but a less trustworthy one (docs/fits.md).
            logger.warning(
                "classified a single-band FITS image (%sx%s) in grey: the model was trained on colour",
                layout.width,
                layout.height,
            )
        return PreparedImage(
            tensor=tensor,
            width=layout.width,
            height=layout.height,
            image_format="FITS",
            single_band=layout.band_count == 1,
            bands_assumed=layout.bands_assumed,
            sky_centre=fits.sky_centre(data, layout),
        )

    def classify(self, source: ImageSource) -> ClassificationResult:
        return self.classify_prepared([self.prepare(source)])[0]

    def classify_batch(self, sources: Iterable[ImageSource]) -> list[ClassificationResult]:
        return self.classify_prepared([self.prepare(source) for source in sources])

    def classify_prepared(self, images: Sequence[PreparedImage]) -> list[ClassificationResult]:
        results: list[ClassificationResult] = []
        for start in range(0, len(images), MAX_BATCH_SIZE):
            chunk = images[start : start + MAX_BATCH_SIZE]
            batch = np.stack([image.tensor for image in chunk]).astype(np.float32, copy=False)
            probabilities, elapsed_ms = self._run(batch)
            per_image_ms = elapsed_ms / len(chunk)
            observability.record_inference(per_image_ms / 1000.0, len(chunk))
            results.extend(
                self._result(row, image, per_image_ms)
                for row, image in zip(probabilities, chunk, strict=True)
            )
        return results

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        slot = self._idle.get()
        try:
            started = time.perf_counter()
            interpreter = slot.interpreter
            if batch.shape[0] != slot.batch_size:
                interpreter.resize_tensor_input(self._input_index, list(batch.shape))
                interpreter.allocate_tensors()
                slot.batch_size = batch.shape[0]
            interpreter.set_tensor(self._input_index, batch)
            interpreter.invoke()
            output = np.array(interpreter.get_tensor(self._output_index), dtype=np.float64)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
        finally:
            self._idle.put(slot)
        return output, elapsed_ms

    def _result(self, row: np.ndarray, image: PreparedImage, inference_ms: float) -> ClassificationResult:
        # The model outputs probabilities (classifier.core.manifest.OUTPUT_KINDS). Renormalised in
        # float64 so the stored probabilities sum to 1 exactly enough to audit.
        row = np.clip(row, 0.0, None)
        row = row / row.sum()
        class_index = int(np.argmax(row))
        in_distribution = ood_score = None
        if self.ood_gate is not None:
            in_distribution, ood_score = self.ood_gate.judge(image.tensor, row, self.config)
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
        )


_classifier: GalaxyClassifier | None = None
_classifier_lock = threading.Lock()


def get_classifier() -> GalaxyClassifier:
    """The process-wide classifier, built on first use; raises ModelUnavailableError.

    A failure is not cached, so a model that is fixed on disk is picked up
    without a restart.
    """
    global _classifier  # noqa: PLW0603
    classifier = _classifier
    if classifier is not None:
        return classifier
    with _classifier_lock:
        if _classifier is None:
            _classifier = GalaxyClassifier(
                model_path=Path(settings.MODEL_PATH),
                manifest_path=Path(settings.MODEL_MANIFEST),
                backend=settings.TFLITE_BACKEND,
                num_threads=settings.TFLITE_NUM_THREADS,
            )
            observability.record_model_loaded(
                model_version=_classifier.model_version,
                model_sha256=_classifier.model_sha256,
                backend=_classifier.backend_name,
            )
        return _classifier


def reset_classifier() -> None:
    global _classifier  # noqa: PLW0603
    with _classifier_lock:
        _classifier = None


def model_status() -> tuple[bool, str]:
    """For the readiness probe: whether the model can serve, and why not."""
    try:
        classifier = get_classifier()
    except ModelUnavailableError as exc:
        return False, exc.reason
    return True, f"model {classifier.model_version} served with {classifier.backend_name}"


_MODEL_SETTINGS = {"MODEL_PATH", "MODEL_MANIFEST", "TFLITE_BACKEND", "TFLITE_NUM_THREADS"}


@receiver(setting_changed)
def _reset_on_model_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting in _MODEL_SETTINGS:
        reset_classifier()
