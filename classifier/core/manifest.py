"""The model manifest (ml/models/galaxy10.json): its schema, checked on read, and its writer.

Training writes it (ml/pipeline.py), serving reads it (classifier/core/inference.py), and the
API, the model page and the benchmarks read what serving read. Plain Python like
classifier/core/galaxy10.py and classifier/core/preprocessing.py: ml/ imports it without Django, and
serving without torch or TensorFlow.

What serving relies on is typed and checked here: ``format_version``, ``model_version``,
``sha256``, ``classes`` (the Galaxy10 classes in this app's order), ``preprocessing`` and
``output``. The descriptive sections (``metrics``, ``figures``, ``provenance``, ``training``,
``input``, ...) are free-form JSON objects written by training for people to read; they are
only checked to be objects. Keys this module does not know (an optional ``ood`` section, say)
pass through untouched, so a newer writer's additions survive a read and a write.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier.core.galaxy10 import CLASS_NAMES, GALAXY10_CLASSES
from classifier.core.preprocessing import PreprocessConfig

# Bumped when a change to the manifest would make an older server misread it.
FORMAT_VERSION = 1
# The exported graph ends in the temperature-scaled softmax (ml/export.py), so the model's
# output is already calibrated probabilities; serving supports nothing else.
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_KINDS = (OUTPUT_PROBABILITIES,)
# Top-level sections that, when present, must be JSON objects.
OBJECT_SECTIONS = ("input", "metrics", "figures", "provenance", "training")
# Top-level fields that, when present, must be strings.
OPTIONAL_STRINGS = ("model_file", "created_at", "architecture", "quantization")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """The manifest is missing, unreadable, or does not follow the schema; str() says why."""


@dataclass(frozen=True)
class ManifestClass:
    index: int
    name: str
    description: str
    group: str | None = None


@dataclass(frozen=True)
class ModelManifest:
    """A validated manifest. ``raw`` is the whole JSON document, unknown keys included."""

    format_version: int
    model_version: str
    sha256: str
    classes: tuple[ManifestClass, ...]
    preprocessing: PreprocessConfig
    output_kind: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def create(
        cls,
        *,
        model_file: str,
        model_version: str,
        sha256: str,
        created_at: str,
        preprocessing: PreprocessConfig,
        output: Mapping[str, Any] | None = None,
        **sections: Any,
    ) -> ModelManifest:
        """A new manifest for a model file, with this app's classes and the current format.

        ``output`` holds details of the output beside its kind (e.g. the calibration
        temperature); ``sections`` are the other top-level keys, in the order given.
        """
        head = {
            "format_version": FORMAT_VERSION,
            "model_file": model_file,
            "model_version": model_version,
            "sha256": sha256,
            "created_at": created_at,
        }
        # The key order of the files training has always written.
        early = {"architecture": sections.pop("architecture")} if "architecture" in sections else {}
        body = {
            "classes": [
                {"index": c.index, "name": c.name, "description": c.description, "group": c.group}
                for c in GALAXY10_CLASSES
            ],
            "preprocessing": preprocessing.to_manifest(),
        }
        if "input" in sections:
            body["input"] = sections.pop("input")
        body["output"] = {"kind": OUTPUT_PROBABILITIES, **(output or {})}
        return cls.from_dict({**head, **early, **body, **sections})

    @classmethod
    def from_dict(cls, data: Any) -> ModelManifest:
        """Check ``data`` against the schema; raises ManifestError naming the first problem."""
        if not isinstance(data, dict):
            raise ManifestError("the manifest is not a JSON object")
        missing = {"format_version", "model_version", "sha256", "classes", "preprocessing", "output"}
        missing -= data.keys()
        if missing:
            raise ManifestError(f"the manifest lacks {', '.join(sorted(missing))}")
        version = data["format_version"]
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise ManifestError(
                f"the manifest has format_version {version!r}; this server reads format_version "
                f"{FORMAT_VERSION}"
            )
        model_version = data["model_version"]
        if not isinstance(model_version, str) or not model_version.strip():
            raise ManifestError("the manifest's model_version is not a non-empty string")
        sha256 = data["sha256"]
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ManifestError("the manifest's sha256 is not 64 lowercase hexadecimal digits")
        for key in OPTIONAL_STRINGS:
            if key in data and not isinstance(data[key], str):
                raise ManifestError(f"the manifest's {key} is not a string")
        for key in OBJECT_SECTIONS:
            if key in data and not isinstance(data[key], dict):
                raise ManifestError(f"the manifest's {key} is not a JSON object")
        return cls(
            format_version=version,
            model_version=model_version,
            sha256=sha256,
            classes=_classes(data["classes"]),
            preprocessing=_preprocessing(data["preprocessing"]),
            output_kind=_output_kind(data["output"]),
            raw=copy.deepcopy(data),
        )

    @classmethod
    def read(cls, path: Path) -> ModelManifest:
        """Read and check the manifest at ``path``; raises ManifestError."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ManifestError(f"model manifest {path} does not exist") from exc
        except (OSError, ValueError) as exc:
            raise ManifestError(f"model manifest {path} is unreadable: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ManifestError as exc:
            raise ManifestError(f"model manifest {path}: {exc}") from exc

    def write(self, path: Path) -> None:
        """Write the manifest as indented JSON (the document as read or created, keys in order)."""
        Path(path).write_text(json.dumps(self.raw, indent=2) + "\n", encoding="utf-8")

    def as_dict(self) -> dict[str, Any]:
        """A copy of the whole document, for readers that show its free-form sections."""
        return copy.deepcopy(self.raw)

    def section(self, key: str) -> dict[str, Any]:
        """One of the free-form object sections (``metrics``, ``training``...), {} when absent."""
        return copy.deepcopy(self.raw.get(key, {}))

    @property
    def model_file(self) -> str | None:
        return self.raw.get("model_file")

    @property
    def created_at(self) -> str | None:
        return self.raw.get("created_at")


def _classes(value: Any) -> tuple[ManifestClass, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ManifestError("the manifest's classes are not a list of objects")
    classes = []
    for item in value:
        index, name, description = item.get("index"), item.get("name"), item.get("description")
        group = item.get("group")
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(name, str):
            raise ManifestError("every class in the manifest needs an integer index and a name")
        if not isinstance(description, str) or not (group is None or isinstance(group, str)):
            raise ManifestError(f"class {name!r} in the manifest has no description, or a group not a string")
        classes.append(ManifestClass(index=index, name=name, description=description, group=group))
    classes.sort(key=lambda c: c.index)
    if [c.index for c in classes] != list(range(len(classes))):
        raise ManifestError("the manifest's class indices are not 0, 1, 2, ... each once")
    if tuple(c.name for c in classes) != CLASS_NAMES:
        raise ManifestError(
            "the manifest's classes do not match the Galaxy10 DECaLS classes served by this app"
        )
    return tuple(classes)


def _preprocessing(value: Any) -> PreprocessConfig:
    if not isinstance(value, dict):
        raise ManifestError("the manifest's preprocessing is not a JSON object")
    try:
        config = PreprocessConfig.from_manifest(value)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"the manifest's preprocessing is invalid: {exc}") from exc
    if not isinstance(config.size, int) or isinstance(config.size, bool) or config.size <= 0:
        raise ManifestError(f"the manifest's preprocessing size {config.size!r} is not a positive integer")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (config.mean, config.std)):
        raise ManifestError("the manifest's preprocessing mean and std are not numbers")
    if config.std == 0:
        raise ManifestError("the manifest's preprocessing std is 0")
    return config


def _output_kind(value: Any) -> str:
    if not isinstance(value, dict):
        raise ManifestError("the manifest's output is not a JSON object")
    kind = value.get("kind")
    if kind not in OUTPUT_KINDS:
        raise ManifestError(
            f"the manifest's output kind is {kind!r}; this server serves {', '.join(OUTPUT_KINDS)} "
            "(ml/export.py puts the softmax in the model)"
        )
    temperature = value.get("calibration_temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or isinstance(temperature, bool) or temperature <= 0
    ):
        raise ManifestError(
            f"the manifest's calibration_temperature {temperature!r} is not a positive number"
        )
    return kind
