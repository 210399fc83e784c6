"""Model roll-out: the versions an operator keeps side by side, and the check before one is served.

A model repository is a folder with one sub-folder per version, each holding a .tflite file
and its manifest (the files `make model` writes to ml/models/):

    /srv/galaxy/models/
        2026.11.26-effnetlite0-128px-float16-c6710a4c/galaxy10.tflite, galaxy10.json
        2026.12.03-.../galaxy10.tflite, galaxy10.json
        current -> 2026.12.03-...          (optional: a link MODEL_PATH can point through)

MODEL_PATH selects the served file, so switching or rolling back is a change of setting
(or of the `current` link) and a graceful restart, never a change of code.
"""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from PIL import Image, ImageDraw, ImageFilter

from classifier.core.exceptions import ModelUnavailableError
from classifier.core.formats import RASTER_SUFFIXES
from classifier.core.galaxy10 import NUM_CLASSES
from classifier.core.inference import GalaxyClassifier
from classifier.core.manifest import ManifestError, ModelManifest
from classifier.core.preprocessing import ImageDecodeError
from classifier.predictions.inference import decode_limits, get_classifier

CURRENT_LINK = "current"


@dataclass(frozen=True)
class ModelEntry:
    """One model found in a repository: where it is, and what its manifest says."""

    model_path: Path
    manifest_path: Path
    version: str
    created_at: str
    served: bool


@dataclass
class ValidationReport:
    model_path: Path
    manifest_path: Path
    version: str = ""
    backend: str = ""
    problems: list[str] = field(default_factory=list)
    images_checked: int = 0
    agreement_with_served: float | None = None
    mean_inference_ms: float | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def manifest_for(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def model_list(*, root: Path) -> list[ModelEntry]:
    """Every model (a .tflite, with its manifest beside it) in ``root`` and one level below."""
    served = Path(settings.MODEL_PATH)
    entries = []
    candidates = sorted({*root.glob("*.tflite"), *root.glob("*/*.tflite")})
    for model_path in candidates:
        if model_path.parent.name == CURRENT_LINK and model_path.parent.is_symlink():
            continue  # the link's target is listed under its own name
        manifest_path = manifest_for(model_path)
        try:
            manifest = ModelManifest.read(manifest_path)
            version, created_at = manifest.model_version, manifest.created_at or ""
        except ManifestError:
            version, created_at = "(no valid manifest)", ""
        entries.append(
            ModelEntry(
                model_path=model_path,
                manifest_path=manifest_path,
                version=version,
                created_at=created_at,
                served=_same_file(model_path, served),
            )
        )
    return entries


def _synthetic_galaxy() -> bytes:
    """A bright, blurred ellipse on black: an image any Galaxy10 model must be able to take."""
    image = Image.new("RGB", (160, 160))
    ImageDraw.Draw(image).ellipse((50, 60, 110, 100), fill=(230, 210, 190))
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(6)).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_probabilities(probabilities: tuple[float, ...]) -> str | None:
    if len(probabilities) != NUM_CLASSES:
        return f"the model gave {len(probabilities)} probabilities, not {NUM_CLASSES}"
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities):
        return "the model gave probabilities outside [0, 1] or not finite"
    if abs(sum(probabilities) - 1.0) > 1e-3:
        return f"the probabilities sum to {sum(probabilities):.4f}, not 1"
    return None


def model_validate(
    *, model_path: Path, manifest_path: Path | None = None, images: list[Path] | None = None
) -> ValidationReport:
    """Load a candidate model as the server would, run it, and check its manifest and outputs.

    With ``images``, also classify them with both the candidate and the served model and
    report how often the two agree on the top class (a roll-out's last look).
    """
    manifest_path = manifest_path or manifest_for(model_path)
    report = ValidationReport(model_path=model_path, manifest_path=manifest_path)
    try:
        candidate = GalaxyClassifier.from_files(
            model_path=model_path,
            manifest_path=manifest_path,
            backend=settings.TFLITE_BACKEND,
            limits=decode_limits,
        )
    except ModelUnavailableError as exc:
        report.problems.append(exc.reason)
        return report
    report.version, report.backend = candidate.model_version, candidate.backend_name
    declared_file = candidate.manifest.model_file
    if declared_file and declared_file != model_path.name:
        report.problems.append(f"the manifest describes {declared_file}, not {model_path.name}")
    problem = _check_probabilities(candidate.classify(_synthetic_galaxy()).probabilities)
    if problem:
        report.problems.append(problem)
    if images:
        _compare_with_served(candidate, images, report)
    return report


def _compare_with_served(candidate: GalaxyClassifier, images: list[Path], report: ValidationReport) -> None:
    try:
        served = get_classifier()
    except ModelUnavailableError:
        served = None
    agree = checked = 0
    elapsed_ms = 0.0
    for path in images:
        try:
            started = time.perf_counter()
            result = candidate.classify(path)
            elapsed_ms += (time.perf_counter() - started) * 1000
        except (ImageDecodeError, OSError):
            continue
        problem = _check_probabilities(result.probabilities)
        if problem:
            report.problems.append(f"{path.name}: {problem}")
        checked += 1
        if served is not None:
            agree += served.classify(path).class_index == result.class_index
    report.images_checked = checked
    if checked:
        report.mean_inference_ms = elapsed_ms / checked
        if served is not None:
            report.agreement_with_served = agree / checked
    else:
        report.problems.append("none of the given images could be read")


def images_in(folder: Path, *, limit: int) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in RASTER_SUFFIXES)[:limit]


def model_activate(*, root: Path, version_dir: Path) -> Path:
    """Point ``root``/current at ``version_dir``, atomically (a new link renamed over the old one).

    The caller validates first; workers pick the model up on their next (graceful) restart.
    """
    link = root / CURRENT_LINK
    if link.exists() and not link.is_symlink():
        msg = f"{link} exists and is not a symbolic link"
        raise ValueError(msg)
    target = os.path.relpath(version_dir.resolve(), root.resolve())
    temporary = root / f".{CURRENT_LINK}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target, target_is_directory=True)
    temporary.replace(link)
    return link
