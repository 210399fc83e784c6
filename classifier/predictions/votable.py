"""The VOTable of job results that astronomers' tools (TOPCAT, astropy) read: the CSV's columns
and cells, each column described by its datatype, unit and UCD."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from classifier.core.galaxy10 import CLASS_NAMES, GROUPS, PROBABILITY_DECIMALS
from classifier.core.galaxy_zoo import GROUP_KEYS, MAIN_QUESTIONS, QUESTIONS
from classifier.predictions.exports import answer_column, group_column

if TYPE_CHECKING:
    from astropy.io.votable.tree import VOTableFile

VOTABLE_VERSION = "1.4"
VOTABLE_CONTENT_TYPE = "application/x-votable+xml"


@dataclass(frozen=True)
class VOColumn:
    """How a VOTable describes a column: its datatype, and its unit and UCD (IVOA UCD1+ words,
    which tools such as TOPCAT use to find the positions and the identifiers)."""

    datatype: str  # unicodeChar, boolean, short, long or double
    ucd: str | None = None
    unit: str | None = None
    precision: str | None = None  # decimals written for a double
    description: str | None = None


_PROBABILITY = VOColumn("double", ucd="stat.probability", precision=str(PROBABILITY_DECIMALS))

# The columns this project writes, by name.
RESULT_VO_COLUMNS: dict[str, VOColumn] = {
    "path": VOColumn(
        "unicodeChar", ucd="meta.id;meta.file", description="The file, as named in the submission."
    ),
    "prediction": VOColumn("unicodeChar", ucd="src.morph.type", description="Galaxy10 DECaLS class."),
    "class_index": VOColumn("short", ucd="meta.code.class", description="Galaxy10 DECaLS class index, 0-9."),
    "confidence": replace(_PROBABILITY, description="Probability of the predicted class."),
    **{name: replace(_PROBABILITY, description=f"Probability of the class {name}.") for name in CLASS_NAMES},
    "in_distribution": VOColumn(
        "boolean",
        ucd="meta.code.qual",
        description="Whether the image looks like the galaxy cutouts the model was trained on.",
    ),
    "ood_score": VOColumn(
        "double",
        ucd="stat.value",
        precision="3",
        description="Squared Mahalanobis distance from the training galaxies.",
    ),
    "single_band": VOColumn(
        "boolean", ucd="meta.code", description="A single-band FITS image, classified in grey."
    ),
    "status": VOColumn("unicodeChar", ucd="meta.code.status", description="classified, failed or pending."),
    "error": VOColumn("unicodeChar", ucd="meta.note", description="Why the file could not be classified."),
    "cutout_url": VOColumn("unicodeChar", ucd="meta.ref.url", description="Where the image was fetched."),
    **{
        group_column(key): replace(
            _PROBABILITY, description=f"Probability of the Galaxy10 group {group} (the sum of its classes)."
        )
        for key, group in zip(GROUP_KEYS, GROUPS, strict=True)
    },
    **{
        answer_column(question, answer): replace(
            _PROBABILITY,
            description=(
                f"Predicted fraction of Galaxy Zoo volunteers answering {answer} to the question {question}."
            ),
        )
        for question in MAIN_QUESTIONS
        for answer in QUESTIONS[question]
    },
}

# Columns named by a submitter's catalogue, recognised by name (case-insensitive). RA and Dec
# in degrees get their unit and the UCD that makes them the table's position; a column that
# turns out not to hold numbers keeps its UCD and loses its unit.
_RA = VOColumn("double", ucd="pos.eq.ra", unit="deg", description="Right ascension (ICRS).")
_DEC = VOColumn("double", ucd="pos.eq.dec", unit="deg", description="Declination (ICRS).")
CATALOGUE_VO_RULES: tuple[tuple[re.Pattern[str], VOColumn], ...] = (
    (re.compile(r"ra|ra[_ ]?(deg|degrees|j2000|icrs)|raj2000|right[_ ]?ascension", re.IGNORECASE), _RA),
    (re.compile(r"dec|dec[_ ]?(deg|degrees|j2000|icrs)|dej2000|declination", re.IGNORECASE), _DEC),
    (
        re.compile(r"id|obj_?id|object_?id|source_?id|galaxy_?id|iauname|name|designation", re.IGNORECASE),
        VOColumn("unicodeChar", ucd="meta.id"),
    ),
    (re.compile(r".*url", re.IGNORECASE), VOColumn("unicodeChar", ucd="meta.ref.url")),
)
_MAIN_POSITION_UCDS = ("pos.eq.ra", "pos.eq.dec")
_INT64 = (-(2**63), 2**63 - 1)


def vo_column(name: str, *, catalogue: bool) -> VOColumn:
    """The description of a column by its name; text without a UCD when nothing is known."""
    if not catalogue and name in RESULT_VO_COLUMNS:
        return RESULT_VO_COLUMNS[name]
    for pattern, column in CATALOGUE_VO_RULES:
        if pattern.fullmatch(name.strip()):
            return column
    return VOColumn("unicodeChar")


def _xml_id(name: str) -> str:
    """``name`` as an XML identifier (an NCName), as astropy would make it, without its warning."""
    text = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    return text if re.match(r"[A-Za-z_]", text) else f"_{text}"


def _parse(datatype: str, text: str) -> object:
    """A cell's value as ``datatype``; ValueError if it is not one (empty cells are nulls)."""
    if datatype == "boolean":
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if datatype in ("short", "long"):
        value = int(text)
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(text)
        return value
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _typed(
    datatype: str, cells: list[str], *, lenient: bool = False
) -> tuple[list[object], list[bool]] | None:
    """The cells as values of ``datatype`` and their null mask, or None if one is not one.

    ``lenient``: a cell that is not one is a null, unless most of the filled cells are not
    (a catalogue's RA column with one mistyped row stays numeric; a sexagesimal one does not)."""
    values: list[object] = []
    mask: list[bool] = []
    parsed = refused = 0
    empty: object = False if datatype == "boolean" else 0
    for text in cells:
        if text == "":
            values.append(empty)
            mask.append(True)
            continue
        try:
            values.append(_parse(datatype, text))
        except ValueError:
            if not lenient:
                return None
            refused += 1
            values.append(empty)
            mask.append(True)
            continue
        parsed += 1
        mask.append(False)
    return (values, mask) if refused <= parsed else None


def _described(
    name: str, cells: list[str], *, catalogue: bool
) -> tuple[VOColumn, tuple[list[object], list[bool]]]:
    """A column's description and its values (with their null mask), by its name and cells."""
    column = vo_column(name, catalogue=catalogue)
    if catalogue and column.datatype == "unicodeChar" and column.ucd is None and any(cells):
        # A catalogue column nobody described: whole numbers, numbers, or text, each cell
        # parsed once per candidate type and the values kept.
        for datatype in ("long", "double"):
            typed = _typed(datatype, cells)
            if typed is not None:
                return replace(column, datatype=datatype), typed
    elif column.datatype != "unicodeChar":
        # Columns named as positions take the odd unreadable cell as a null (its member failed
        # and says why); a column typed from its content had every cell read already.
        typed = _typed(column.datatype, cells, lenient=column.unit is not None)
        if typed is not None:
            return column, typed
        # Not the numbers its name promised (sexagesimal RA, say): kept as text.
        column = replace(column, datatype="unicodeChar", unit=None, precision=None)
    return column, (list(cells), [False] * len(cells))


def votable_from_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    catalogue_from: int,
    catalogue_to: int | None = None,
    name: str,
    description: str = "",
    infos: Sequence[tuple[str, str]] = (),
) -> VOTableFile:
    """A VOTable of ``rows`` (cells as the CSV writes them: text, numbers, empty for null),
    with the same columns in the same order. ``columns[catalogue_from:catalogue_to]`` came
    from the submitter's catalogue: those are described by CATALOGUE_VO_RULES or by their values."""
    # astropy is imported here, not at start-up: every web worker would otherwise carry it,
    # and only VOTable downloads need it (the worker memory budget, docs/benchmarks.md).
    from astropy.io.votable.tree import Field, Info, Resource, TableElement, VOTableFile

    cells: list[list[str]] = [[] for _ in columns]
    for row in rows:
        for position, cell in enumerate(row):
            cells[position].append("" if cell is None else str(cell))

    votable = VOTableFile(version=VOTABLE_VERSION)
    resource = Resource()
    votable.resources.append(resource)
    for info_name, value in infos:
        resource.infos.append(Info(name=info_name, value=value))
    table = TableElement(votable, name=name)
    table.description = description or None
    resource.tables.append(table)

    used_names: set[str] = set()
    used_ids: set[str] = set()
    main_position: set[str] = set()
    typed_columns: list[tuple[str, list[object], list[bool]]] = []
    for position, column_name in enumerate(columns):
        is_catalogue = position in range(len(columns))[catalogue_from:catalogue_to]
        column, typed = _described(column_name, cells[position], catalogue=is_catalogue)
        if column.ucd in _MAIN_POSITION_UCDS and column.unit and column.ucd not in main_position:
            main_position.add(column.ucd)
            column = replace(column, ucd=f"{column.ucd};meta.main")
        # A catalogue may repeat a name (or reuse one of ours); VOTable readers want them distinct.
        unique = column_name or f"column {position + 1}"
        suffix = 2
        while unique in used_names:
            unique, suffix = f"{column_name} ({suffix})", suffix + 1
        used_names.add(unique)
        # astropy names its columns by ID: the name made an XML identifier ("Barred Spiral" ->
        # "Barred_Spiral"), distinct like the names.
        field_id = base_id = _xml_id(unique)
        while field_id in used_ids:
            field_id = f"{base_id}_{len(used_ids)}"
        used_ids.add(field_id)
        table.fields.append(
            Field(
                votable,
                ID=field_id,
                name=unique,
                datatype=column.datatype,
                arraysize="*" if column.datatype == "unicodeChar" else None,
                ucd=column.ucd,
                unit=column.unit,
                precision=column.precision,
            )
        )
        if column.description:
            table.fields[-1].description = column.description
        typed_columns.append((field_id, *typed))

    table.create_arrays(len(cells[0]) if cells else 0)
    for field_id, values, mask in typed_columns:
        if values:
            table.array[field_id] = np.array(values, dtype=table.array.dtype[field_id])
            table.array.mask[field_id] = mask
    return votable


def write_votable(votable: VOTableFile, stream: BinaryIO) -> None:
    """The VOTable as XML (TABLEDATA, which every reader takes)."""
    votable.to_xml(stream, tabledata_format="tabledata")
