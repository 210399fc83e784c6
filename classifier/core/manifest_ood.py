"""The model manifest's ``ood`` section: the fitted out-of-distribution gate (docs/ood.md).

Its own module beside the other sections (classifier/core/manifest_sections.py), whose
``Section`` machinery it uses: read by classifier.core.ood.OodGate.from_section, written by
ml/ood.py through ModelManifest.with_ood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from classifier.core.manifest_sections import (
    ManifestError,
    Section,
    free_form,
    list_of,
    named,
    number,
    section,
    text,
)
from classifier.core.ood import FEATURE_NAMES


def feature_name(value: Any, where: str) -> str:
    if value not in FEATURE_NAMES:
        raise ManifestError(f"{named(where)} {value!r} is not a feature classifier.core.ood computes")
    return value


@dataclass(frozen=True, kw_only=True)
class OodComponent(Section):
    """One Gaussian of a mixture gate; the first is the gate's own mean and inverse covariance."""

    name: Annotated[str, text]
    mean: Annotated[tuple[float, ...], list_of(number)]
    inverse_covariance: Annotated[tuple[tuple[float, ...], ...], list_of(list_of(number))]


@dataclass(frozen=True, kw_only=True)
class OodSection(Section):
    """The fitted out-of-distribution gate (classifier.core.ood.OodGate, docs/ood.md)."""

    version: Annotated[str | None, text] = None
    features: Annotated[tuple[str, ...], list_of(feature_name)]
    mean: Annotated[tuple[float, ...], list_of(number)]
    inverse_covariance: Annotated[tuple[tuple[float, ...], ...], list_of(list_of(number))]
    # A mixture gate's Gaussians; absent (one Gaussian) in gates before the mixture.
    components: Annotated[tuple[OodComponent, ...] | None, list_of(section(OodComponent))] = None
    threshold: Annotated[float, number]
    score: Annotated[str | None, text] = None
    # The fit's report (flag rates, AUROC per set), for people.
    metrics: Annotated[dict[str, Any] | None, free_form] = None

    def validate(self, where: str) -> None:
        n = len(self.features)
        if n == 0:
            raise ManifestError(f"{named(where)} names no features")
        own = (self.mean, self.inverse_covariance)
        gaussians = {where: own} | {
            f"{where}.components[{i}]": (c.mean, c.inverse_covariance)
            for i, c in enumerate(self.components or ())
        }
        for path, (mean, inverse) in gaussians.items():
            if len(mean) != n or len(inverse) != n or any(len(row) != n for row in inverse):
                raise ManifestError(
                    f"{named(path)} has {n} features but a mean of {len(mean)} values and an "
                    f"inverse covariance of {len(inverse)} rows: both need {n}"
                )
        # Readers that predate the mixture score with the gate's own Gaussian alone: it must be component 0.
        if self.components and gaussians[f"{where}.components[0]"] != own:
            raise ManifestError(f"{named(where)} mean and inverse_covariance are not its components[0]'s")
