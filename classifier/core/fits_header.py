"""The FITS headers, walked card by card before anything is allocated from them.

Every size a header declares is checked against the file's before it is trusted: a header
costs time in proportion to its length in the file, never to a number written in it, and
arbitrary-precision integers keep a hostile size from overflowing. Used by classifier.core.fits
(the image HDU and its WCS) and classifier.core.metadata.fits (the stored copy's keywords).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

# The FITS standard 4.0: headers are 80-byte cards in 2880-byte blocks (section 3.1), at most
# 999 axes (4.4.1.1), and these BITPIX values (table 8).
BLOCK = 2880
CARD = 80
MAX_AXES = 999
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_STRING = re.compile(r"'((?:[^']|'')*)'")


class HeaderError(ValueError):
    """A header that breaks the standard in a way that stops the walk."""


@dataclass(frozen=True)
class Hdu:
    """One header and data unit, as its header declares it; every offset lies inside the file."""

    index: int
    start: int  # the first header card
    data_start: int  # just past the header's last block
    data_end: int  # the declared data, without the padding to a whole block
    cards: tuple[str, ...]  # up to END, which is not included
    values: dict[str, str]  # keyword -> raw value field, first occurrence

    @property
    def end(self) -> int:
        """Where the next HDU starts."""
        return self.data_start + -(-(self.data_end - self.data_start) // BLOCK) * BLOCK

    def value(self, keyword: str) -> str | int | bool | None:
        """A keyword's value: a string, an integer, a logical, or the raw text of anything else
        (a real number); None when absent or without a value."""
        raw = self.values.get(keyword)
        if raw is None:
            return None
        if raw.startswith("'"):
            match = _STRING.match(raw)
            return match.group(1).replace("''", "'").rstrip() if match else None
        raw = raw.split("/", 1)[0].strip()
        if raw in ("T", "F"):
            return raw == "T"
        return int(raw) if _INTEGER.fullmatch(raw) else raw

    def integer(self, keyword: str, *, default: int | None = None) -> int:
        value = self.value(keyword)
        if value is None:
            if default is None:
                raise HeaderError(f"{keyword} is missing")
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise HeaderError(f"{keyword} = {value!s:.40} is not a whole number of 0 or more")
        return value

    @property
    def kind(self) -> str:
        """PRIMARY for the first HDU, else its XTENSION ("IMAGE", "BINTABLE", ...)."""
        return "PRIMARY" if self.index == 0 else str(self.value("XTENSION") or "").upper()

    @property
    def bitpix(self) -> int:
        bitpix = self.value("BITPIX")
        if bitpix not in _BITPIX or isinstance(bitpix, bool):
            raise HeaderError(f"BITPIX = {bitpix!s:.40} is not one of 8, 16, 32, 64, -32, -64")
        return int(bitpix)

    @functools.cached_property
    def axes(self) -> tuple[int, ...]:
        """NAXIS1, NAXIS2, ... in the header's order (fastest first)."""
        naxis = self.integer("NAXIS")
        if naxis > MAX_AXES:
            raise HeaderError(f"NAXIS = {naxis} is more than the standard's {MAX_AXES} axes")
        return tuple(self.integer(f"NAXIS{axis}") for axis in range(1, naxis + 1))

    @property
    def is_compressed_image(self) -> bool:
        return self.kind == "BINTABLE" and self.value("ZIMAGE") is True

    @property
    def is_random_groups(self) -> bool:
        axes = self.axes
        return self.kind == "PRIMARY" and self.value("GROUPS") is True and bool(axes) and axes[0] == 0


def data_size(hdu: Hdu) -> int:
    """The bytes of data the header declares (FITS standard 4.0, equations 1 and 2)."""
    axes = hdu.axes
    if not axes:
        return 0
    if hdu.is_random_groups:
        axes = axes[1:]
    elif hdu.kind == "PRIMARY":
        return abs(hdu.bitpix) // 8 * math.prod(axes)
    pcount = hdu.integer("PCOUNT", default=0)
    gcount = hdu.integer("GCOUNT", default=1)
    # Arbitrary-precision integers: a header's huge sizes are compared, never allocated.
    return abs(hdu.bitpix) // 8 * gcount * (pcount + math.prod(axes))


def read_header(data: bytes, start: int, index: int) -> Hdu:
    """The header starting at ``start``: its cards up to END, read one by one (so a header costs
    time in proportion to its length in the file, never to a number written in it)."""
    cards: list[str] = []
    values: dict[str, str] = {}
    pos = start
    while True:
        if pos + CARD > len(data):
            raise HeaderError("a header has no END card")
        card = data[pos : pos + CARD].decode("latin-1")
        pos += CARD
        keyword = card[:8].rstrip().upper()
        if keyword == "END":
            break
        cards.append(card)
        if card[8:10] == "= " and keyword not in values:
            values[keyword] = card[10:].strip()
    first = cards[0][:8].rstrip().upper() if cards else ""
    if first != ("SIMPLE" if index == 0 else "XTENSION"):
        raise HeaderError("a header does not start with SIMPLE (first) or XTENSION (others)")
    data_start = start + -(-(pos - start) // BLOCK) * BLOCK
    hdu = Hdu(index, start, data_start, data_start, tuple(cards), values)
    if index == 0 and hdu.value("SIMPLE") is not True:
        raise HeaderError("SIMPLE is not T: the file does not conform to the FITS standard")
    return hdu


def with_data(hdu: Hdu, file_size: int) -> Hdu:
    size = data_size(hdu)
    if hdu.data_start + size > file_size:
        raise HeaderError(
            f"a header declares {size:,} bytes of data, more than the file holds after it "
            f"({max(0, file_size - hdu.data_start):,})"
        )
    return dataclasses.replace(hdu, data_end=hdu.data_start + size)


def walk(data: bytes) -> Iterator[Hdu]:
    """Each HDU in turn, its declared sizes checked against the file's before it is yielded;
    raises HeaderError at the first one that breaks the standard."""
    pos = 0
    index = 0
    while pos < len(data):
        hdu = read_header(data, pos, index)
        if hdu.is_compressed_image:
            # Yielded before its table's size is checked: the caller refuses it by name.
            yield hdu
            return
        hdu = with_data(hdu, len(data))
        yield hdu
        pos = hdu.end
        index += 1


@dataclass(frozen=True)
class Headers:
    """Every HDU the walk reached, in order, and the error that stopped it before the end of
    the file (None when it reached the end, or a tile-compressed image, which ends the walk).
    Read once per upload: the image is found in it, and the stored copy is written from it."""

    hdus: tuple[Hdu, ...]
    error: HeaderError | None = None


def read_headers(data: bytes) -> Headers:
    hdus: list[Hdu] = []
    try:
        for hdu in walk(data):
            hdus.append(hdu)
    except HeaderError as exc:
        return Headers(tuple(hdus), exc)
    return Headers(tuple(hdus))
