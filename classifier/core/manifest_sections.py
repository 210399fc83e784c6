"""The model manifest's sections as typed, frozen values, each checked when it is read.

Every section is a ``Section``: its dataclass fields are the keys this schema knows, each
annotated with the check it must pass (``Annotated[type, check]``; a field without a default
is a required key, one with the default None may be absent or null); keys it does not know
are kept in ``extra`` and the keys' order in ``order``, so a manifest read and written back
is the same file. The
checks raise ManifestError with the key's path in the manifest ("metrics.val/gz1.top1"), so a
refusal says where the problem is and what was expected.

Plain Python, like the rest of classifier/core: ml/ imports it without Django.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Self

from classifier.core.galaxy10 import NUM_CLASSES
from classifier.core.preprocessing import PreprocessConfig

# The exported graph ends in the temperature-scaled softmax (ml/export.py), so the model's
# output is already calibrated probabilities; serving supports nothing else.
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_KINDS = (OUTPUT_PROBABILITIES,)

Check = Callable[[Any, str], Any]


class ManifestError(ValueError):
    """The manifest is missing, unreadable, or does not follow the schema; str() says why."""


def named(where: str) -> str:
    """How a refusal names a key: "the manifest's metrics.val/gz1.top1"."""
    return f"the manifest's {where}" if where else "the manifest"


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# --- checks: each returns the value to keep, or raises ManifestError --------------------------


def text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{named(where)} is not a string")
    return value


def flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(f"{named(where)} is not true or false")
    return value


def count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ManifestError(f"{named(where)} {value!r} is not a whole number of at least 0")
    return value


def number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ManifestError(f"{named(where)} {value!r} is not a finite number")
    return value


def positive(value: Any, where: str) -> float:
    if number(value, where) <= 0:
        raise ManifestError(f"{named(where)} {value!r} is not a positive number")
    return value


def share(value: Any, where: str) -> float:
    if not 0 <= number(value, where) <= 1:
        raise ManifestError(f"{named(where)} {value!r} is not a number from 0 to 1")
    return value


def free_form(value: Any, where: str) -> dict[str, Any]:
    """An object written for people to read (a report, a configuration): kept as it is."""
    if not isinstance(value, dict):
        raise ManifestError(f"{named(where)} is not a JSON object")
    return copy.deepcopy(value)


def nullable(check: Check) -> Check:
    def checked(value: Any, where: str) -> Any:
        return None if value is None else check(value, where)

    return checked


def list_of(check: Check, *, length: int | None = None) -> Check:
    def checked(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ManifestError(f"{named(where)} is not a list")
        if length is not None and len(value) != length:
            raise ManifestError(f"{named(where)} has {len(value)} values, not {length}")
        return tuple(check(item, f"{where}[{i}]") for i, item in enumerate(value))

    return checked


def mapping_of(check: Check) -> Check:
    def checked(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ManifestError(f"{named(where)} is not a JSON object")
        return {key: check(item, _path(where, key)) for key, item in value.items()}

    return checked


def section(kind: type[Section]) -> Check:
    return kind.parse


def per_class(check: Check) -> Check:
    """One value per Galaxy10 class, in the classes' order."""
    return list_of(check, length=NUM_CLASSES)


def to_json(value: Any) -> Any:
    """A section's value as JSON data: lists for tuples, fresh copies of every object."""
    if isinstance(value, Section | MetricsSection):
        return value.to_dict()
    if isinstance(value, PreprocessConfig):
        return value.to_manifest()
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


@functools.cache
def _keys(kind: type[Section]) -> dict[str, tuple[Check, bool]]:
    hints = typing.get_type_hints(kind, include_extras=True)
    return {
        f.name: (hints[f.name].__metadata__[0], f.default is dataclasses.MISSING)
        for f in dataclasses.fields(kind)
        if typing.get_origin(hints[f.name]) is Annotated
    }


@dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every section: the known keys as fields, the others in ``extra``."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def keys(cls) -> dict[str, tuple[Check, bool]]:
        """{key: (its check, whether it is required)} for the keys this section knows."""
        return _keys(cls)

    @classmethod
    def parse(cls, value: Any, where: str = "") -> Self:
        if not isinstance(value, dict):
            raise ManifestError(f"{named(where)} is not a JSON object")
        keys = cls.keys()
        missing = sorted(key for key, (_, required) in keys.items() if required and key not in value)
        if missing:
            raise ManifestError(f"{named(where)} lacks {', '.join(missing)}")
        # An optional key may be null (a measurement the run could not make).
        values = {
            key: item if item is None and not keys[key][1] else keys[key][0](item, _path(where, key))
            for key, item in value.items()
            if key in keys
        }
        extra = {key: copy.deepcopy(item) for key, item in value.items() if key not in keys}
        parsed = cls(**values, extra=extra, order=tuple(value))
        parsed.validate(where)
        return parsed

    def validate(self, where: str) -> None:
        """Checks across keys; a section that has some overrides this."""

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON data, keys in the order read, then any added since."""
        present = [k for k in self.keys() if getattr(self, k) is not None]
        order = dict.fromkeys([*self.order, *present, *self.extra])
        return {
            key: copy.deepcopy(self.extra[key]) if key in self.extra else to_json(getattr(self, key))
            for key in order
        }

    def without(self, key: str) -> Self:
        """This section without one of its known keys."""
        return dataclasses.replace(self, **{key: None}, order=tuple(k for k in self.order if k != key))


# --- sections ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InputSection(Section):
    shape: Annotated[tuple[int, ...] | None, list_of(positive)] = None
    dtype: Annotated[str | None, text] = None
    batch_resizable: Annotated[bool | None, flag] = None


@dataclass(frozen=True, kw_only=True)
class OutputSection(Section):
    kind: Annotated[str | None, text] = None
    calibration_temperature: Annotated[float | None, positive] = None
    calibration_samples: Annotated[int | None, count] = None
    prior: Annotated[str | None, text] = None

    def validate(self, where: str) -> None:
        if self.kind not in OUTPUT_KINDS:
            raise ManifestError(
                f"{named(where)} kind is {self.kind!r}; this server serves {', '.join(OUTPUT_KINDS)} "
                "(ml/export.py puts the softmax in the model)"
            )


@dataclass(frozen=True, kw_only=True)
class Reliability(Section):
    """A reliability diagram's bins: ``edges`` has one more value than the other lists."""

    edges: Annotated[tuple[float, ...], list_of(share)]
    counts: Annotated[tuple[int, ...], list_of(count)]
    confidence: Annotated[tuple[float, ...], list_of(share)]
    accuracy: Annotated[tuple[float, ...], list_of(share)]

    def validate(self, where: str) -> None:
        bins = len(self.counts)
        if len(self.edges) != bins + 1 or len(self.confidence) != bins or len(self.accuracy) != bins:
            raise ManifestError(
                f"{named(where)} needs one more edge than counts, and as many confidences and "
                "accuracies as counts"
            )


@dataclass(frozen=True, kw_only=True)
class QuestionError(Section):
    """Mean absolute error of one Galaxy Zoo question's predicted vote fractions against the
    volunteers', over ``n`` galaxies: per answer, and ``mae`` their mean."""

    n: Annotated[int, count]
    mae: Annotated[float, number]
    answers: Annotated[dict[str, float], mapping_of(number)]


@dataclass(frozen=True, kw_only=True)
class EvaluationMetrics(Section):
    """One evaluation set's measurements; a set reports those its labels allow."""

    images: Annotated[int | None, count] = None
    n: Annotated[int | None, count] = None
    top1: Annotated[float | None, share] = None
    top1_interval95: Annotated[tuple[float, float] | None, list_of(share, length=2)] = None
    balanced_accuracy: Annotated[float | None, share] = None
    galaxy10_weighted_accuracy: Annotated[float | None, share] = None
    top2: Annotated[float | None, share] = None
    group4: Annotated[float | None, share] = None
    coarse_accuracy: Annotated[float | None, share] = None
    macro_f1: Annotated[float | None, share] = None
    per_class_recall: Annotated[tuple[float | None, ...] | None, per_class(nullable(share))] = None
    ece: Annotated[float | None, share] = None
    confusion_matrix: Annotated[tuple[tuple[int, ...], ...] | None, per_class(per_class(count))] = None
    reliability: Annotated[Reliability | None, section(Reliability)] = None
    soft_cross_entropy: Annotated[float | None, number] = None
    group_abs_error: Annotated[float | None, number] = None
    # Question -> its vote-fraction error, for a model with the vote output (ml/decals_validation.py).
    vote_fraction_mae: Annotated[dict[str, QuestionError] | None, mapping_of(section(QuestionError))] = None

    @property
    def size(self) -> int | None:
        """How many images the rates are shares of (``images`` where ``n`` is not given)."""
        return self.n or self.images


@dataclass(frozen=True, kw_only=True)
class ExportCandidate(Section):
    bytes: Annotated[int | None, count] = None
    max_abs_diff_vs_torch: Annotated[float | None, number] = None
    max_abs_vote_diff_vs_torch: Annotated[float | None, number] = None
    val_pooled_top1: Annotated[float | None, share] = None
    dev_top1: Annotated[float | None, share] = None
    accuracy: Annotated[dict[str, float] | None, mapping_of(share)] = None


@dataclass(frozen=True, kw_only=True)
class ExportCheck(Section):
    max_abs_diff_vs_torch_on_dev_images: Annotated[float | None, number] = None
    candidates: Annotated[dict[str, ExportCandidate] | None, mapping_of(section(ExportCandidate))] = None
    selection_rule: Annotated[str | None, text] = None
    int8_losses_beyond_tolerance: Annotated[dict[str, Any] | None, free_form] = None


EXPORT_CHECK = "export_check"


@dataclass(frozen=True)
class MetricsSection:
    """The evaluation sets by name, in the manifest's order, and the export check."""

    sets: dict[str, EvaluationMetrics]
    export_check: ExportCheck | None = None
    order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def parse(cls, value: Any, where: str = "metrics") -> MetricsSection:
        if not isinstance(value, dict):
            raise ManifestError(f"{named(where)} is not a JSON object")
        sets = {
            key: EvaluationMetrics.parse(item, _path(where, key))
            for key, item in value.items()
            if key != EXPORT_CHECK
        }
        check = value.get(EXPORT_CHECK)
        export_check = None if check is None else ExportCheck.parse(check, _path(where, EXPORT_CHECK))
        return cls(sets=sets, export_check=export_check, order=tuple(value))

    def to_dict(self) -> dict[str, Any]:
        entries: dict[str, Any] = {key: value.to_dict() for key, value in self.sets.items()}
        if self.export_check is not None:
            entries[EXPORT_CHECK] = self.export_check.to_dict()
        order = dict.fromkeys([*(k for k in self.order if k in entries), *entries])
        return {key: entries[key] for key in order}


@dataclass(frozen=True, kw_only=True)
class DataSource(Section):
    name: Annotated[str, text]
    images: Annotated[int | None, count] = None
    crop_fraction: Annotated[float | None, share] = None
    images_sha256: Annotated[str | None, text] = None
    targets_sha256: Annotated[str | None, text] = None


@dataclass(frozen=True, kw_only=True)
class ProvenanceSection(Section):
    sources: Annotated[tuple[DataSource, ...] | None, list_of(section(DataSource))] = None
    # {split: {source name: images}}
    splits: Annotated[dict[str, dict[str, int]] | None, mapping_of(mapping_of(count))] = None
    git_commit: Annotated[str | None, text] = None
    torch: Annotated[str | None, text] = None


@dataclass(frozen=True, kw_only=True)
class TrainingSection(Section):
    # ml/config.toml as the run read it: its tables are the configuration's, not this schema's.
    config: Annotated[dict[str, Any] | None, free_form] = None
    class_weights: Annotated[tuple[float, ...] | None, per_class(number)] = None
    selected_epoch: Annotated[int | None, count] = None
    prior: Annotated[dict[str, Any] | None, free_form] = None
    train_seconds: Annotated[float | None, number] = None
    history: Annotated[tuple[dict[str, Any], ...] | None, list_of(free_form)] = None
