"""The model manifest (ml/models/galaxy10.json): one typed schema for every section, checked
on read, and the only reader and writer of the file.

Training writes it (ml/pipeline.py, and ml/ood.py its ``ood`` section), serving reads it
(classifier/core/inference.py), and the API, the model page and the benchmarks read what
serving read. Plain Python like classifier/core/galaxy10.py: ml/ imports it without Django,
and serving without torch or TensorFlow.

Each section is a frozen dataclass (classifier/core/manifest_sections.py) checked in
``from_dict``; keys the schema does not know pass through untouched, and the keys keep their
order, so a manifest read and written back is the same file byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from classifier.core.galaxy10 import CLASS_NAMES, GALAXY10_CLASSES
from classifier.core.galaxy_zoo import MAIN_QUESTIONS, QUESTIONS
from classifier.core.manifest_ood import OodSection
from classifier.core.manifest_sections import (
    OUTPUT_KINDS,
    OUTPUT_PROBABILITIES,
    InputSection,
    ManifestError,
    MetricsSection,
    OutputSection,
    ProvenanceSection,
    Section,
    TrainingSection,
    count,
    mapping_of,
    named,
    section,
    text,
    to_json,
)
from classifier.core.preprocessing import PreprocessConfig

__all__ = [
    "FORMAT_VERSION",
    "OUTPUT_KINDS",
    "OUTPUT_PROBABILITIES",
    "GalaxyZooSection",
    "ManifestClass",
    "ManifestError",
    "ModelManifest",
    "OodSection",
]

# Bumped when a change to the manifest would make an older server misread it.
FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class ManifestClass(Section):
    index: Annotated[int, count]
    name: Annotated[str, text]
    description: Annotated[str, text]
    group: Annotated[str | None, text] = None


def _format_version(value: Any, where: str) -> int:
    if value != FORMAT_VERSION or isinstance(value, bool):
        raise ManifestError(
            f"the manifest has format_version {value!r}; this server reads format_version {FORMAT_VERSION}"
        )
    return value


def _model_version(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{named(where)} is not a non-empty string")
    return value


def _sha256(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ManifestError(f"{named(where)} is not 64 lowercase hexadecimal digits")
    return value


def _preprocessing(value: Any, where: str) -> PreprocessConfig:
    if not isinstance(value, dict):
        raise ManifestError(f"{named(where)} is not a JSON object")
    try:
        config = PreprocessConfig.from_manifest(value)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{named(where)} is invalid: {exc}") from exc
    if not isinstance(config.size, int) or isinstance(config.size, bool) or config.size <= 0:
        raise ManifestError(f"{named(where)} size {config.size!r} is not a positive integer")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (config.mean, config.std)):
        raise ManifestError(f"{named(where)} mean and std are not numbers")
    if config.std == 0:
        raise ManifestError(f"{named(where)} std is 0")
    return config


def _classes(value: Any, where: str) -> tuple[ManifestClass, ...]:
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
        classes.append(ManifestClass.parse(item, f"classes[{index}]"))
    classes.sort(key=lambda c: c.index)
    if [c.index for c in classes] != list(range(len(classes))):
        raise ManifestError("the manifest's class indices are not 0, 1, 2, ... each once")
    if tuple(c.name for c in classes) != CLASS_NAMES:
        raise ManifestError(
            "the manifest's classes do not match the Galaxy10 DECaLS classes served by this app"
        )
    return tuple(classes)


def _questions(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        raise ManifestError(f"{named(where)} is not a JSON object of questions")
    questions = {}
    for question, answers in value.items():
        at = f"{where}.{question}"
        if question not in QUESTIONS:
            raise ManifestError(f"{named(at)} is not a Galaxy Zoo DECaLS question this app knows")
        if not isinstance(answers, list) or sorted(answers) != sorted(QUESTIONS[question]):
            raise ManifestError(
                f"{named(at)} are not the answers {', '.join(QUESTIONS[question])}, each once"
            )
        questions[question] = tuple(answers)
    missing = [q for q in MAIN_QUESTIONS if q not in questions]
    if missing:
        raise ManifestError(f"{named(where)} lacks {', '.join(missing)}")
    return questions


@dataclass(frozen=True, kw_only=True)
class GalaxyZooSection(Section):
    """The model's second output (ml/export.py): the expected vote fraction of every answer
    within its question, the questions and their answers in the output's order."""

    output: Annotated[str | None, text] = None
    questions: Annotated[dict[str, tuple[str, ...]], _questions]

    @property
    def answers(self) -> int:
        """How many values the output has."""
        return sum(len(answers) for answers in self.questions.values())


@dataclass(frozen=True, kw_only=True)
class ModelManifest(Section):
    """A validated manifest: every section typed, unknown top-level keys in ``extra``."""

    format_version: Annotated[int, _format_version]
    model_file: Annotated[str | None, text] = None
    model_version: Annotated[str, _model_version]
    sha256: Annotated[str, _sha256]
    created_at: Annotated[str | None, text] = None
    architecture: Annotated[str | None, text] = None
    classes: Annotated[tuple[ManifestClass, ...], _classes]
    preprocessing: Annotated[PreprocessConfig, _preprocessing]
    input: Annotated[InputSection | None, section(InputSection)] = None
    output: Annotated[OutputSection, section(OutputSection)]
    quantization: Annotated[str | None, text] = None
    metrics: Annotated[MetricsSection | None, MetricsSection.parse] = None
    # Figure name -> path of its image relative to the static files.
    figures: Annotated[dict[str, str] | None, mapping_of(text)] = None
    provenance: Annotated[ProvenanceSection | None, section(ProvenanceSection)] = None
    training: Annotated[TrainingSection | None, section(TrainingSection)] = None
    ood: Annotated[OodSection | None, section(OodSection)] = None
    # Present when the model has the vote-fraction output.
    galaxy_zoo: Annotated[GalaxyZooSection | None, section(GalaxyZooSection)] = None

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
        body: dict[str, Any] = {
            "classes": [
                {"index": c.index, "name": c.name, "description": c.description, "group": c.group}
                for c in GALAXY10_CLASSES
            ],
            "preprocessing": preprocessing.to_manifest(),
        }
        if "input" in sections:
            body["input"] = sections.pop("input")
        body["output"] = {"kind": OUTPUT_PROBABILITIES, **(output or {})}
        return cls.from_dict({**head, **early, **body, **to_json(sections)})

    @classmethod
    def from_dict(cls, data: Any) -> ModelManifest:
        """Check ``data`` against the schema; raises ManifestError naming the first problem."""
        return cls.parse(data)

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
        """Write the manifest as indented JSON, keys in the order read or created."""
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")

    def as_dict(self) -> dict[str, Any]:
        """The whole document as JSON data (a fresh copy), unknown keys included."""
        return self.to_dict()

    def section(self, key: str) -> dict[str, Any]:
        """One top-level object (``metrics``, ``training``...) as JSON data, {} when absent."""
        value = self.extra.get(key) if key in self.extra else None
        if key in self.keys():
            value = getattr(self, key)
        return to_json(value) if value is not None else {}

    def with_ood(self, ood: OodSection) -> ModelManifest:
        """This manifest with ``ood`` as its gate (a new manifest; this one is unchanged)."""
        return dataclasses.replace(self, ood=ood)

    def without_ood(self) -> ModelManifest:
        """This manifest without a gate, as before any gate was fitted for the model."""
        return self.without("ood")

    @property
    def output_kind(self) -> str:
        return self.output.kind
