"""FITS cutouts to RGB, the way the Legacy Surveys viewer colours DECaLS g, r, z images.

Django-free, like classifier.core.preprocessing. The headers are walked here, card by card, and
every size they declare is checked against the limits before anything is allocated or
iterated from it; only then is the one image HDU handed to astropy, which is imported inside
the function that decodes it, never at module import: a worker that is never sent a FITS
file does not pay for it (docs/fits.md has the measured cost). Tile-compressed images are
refused: their tiles would be inflated by a decoder whose output nothing bounds.

The colour recipe is the viewer's ``dr2_rgb`` (``sdss_rgb`` with the DECaLS scales), cited
and written out in docs/fits.md.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from classifier.core.exceptions import Count
from classifier.core.preprocessing import ImageDecodeError

# Every FITS file starts with this card (FITS standard 4.0, section 4.4.1.1).
FITS_MAGIC = b"SIMPLE  ="
# The Legacy Surveys viewer's dr2_rgb: band -> (RGB plane, scale), softening m and stretch Q.
DECALS_SCALES: dict[str, tuple[int, float]] = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2)}
DECALS_M = 0.03
DECALS_Q = 20.0
CUBE_BANDS = ("g", "r", "z")
# A lone band is stretched as the middle (r) band of the recipe.
GREY_BAND = "r"
# Decoding holds, per value: the raw bytes, astropy's scaled copy (float64 at most, when the
# header has BSCALE/BZERO), a float32 copy and a finiteness mask (1 byte); and per pixel about
# seven float32 planes while the colours are computed (intensity, stretch, 3 channels, temporaries).
_BYTES_PER_VALUE = 8 + 4 + 1
_WORKING_PLANES = 7
# The FITS standard 4.0: headers are 80-byte cards in 2880-byte blocks (section 3.1), at most
# 999 axes (4.4.1.1), and these BITPIX values (table 8).
BLOCK = 2880
CARD = 80
MAX_AXES = 999
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_STRING = re.compile(r"'((?:[^']|'')*)'")


class _HeaderError(ValueError):
    """A header that breaks the standard in a way that stops the walk."""


@dataclass(frozen=True)
class _Hdu:
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
                raise _HeaderError(f"{keyword} is missing")
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _HeaderError(f"{keyword} = {value!s:.40} is not a whole number of 0 or more")
        return value

    @property
    def kind(self) -> str:
        """PRIMARY for the first HDU, else its XTENSION ("IMAGE", "BINTABLE", ...)."""
        return "PRIMARY" if self.index == 0 else str(self.value("XTENSION") or "").upper()

    @property
    def bitpix(self) -> int:
        bitpix = self.value("BITPIX")
        if bitpix not in _BITPIX or isinstance(bitpix, bool):
            raise _HeaderError(f"BITPIX = {bitpix!s:.40} is not one of 8, 16, 32, 64, -32, -64")
        return int(bitpix)

    @functools.cached_property
    def axes(self) -> tuple[int, ...]:
        """NAXIS1, NAXIS2, ... in the header's order (fastest first)."""
        naxis = self.integer("NAXIS")
        if naxis > MAX_AXES:
            raise _HeaderError(f"NAXIS = {naxis} is more than the standard's {MAX_AXES} axes")
        return tuple(self.integer(f"NAXIS{axis}") for axis in range(1, naxis + 1))

    @property
    def is_compressed_image(self) -> bool:
        return self.kind == "BINTABLE" and self.value("ZIMAGE") is True

    @property
    def is_random_groups(self) -> bool:
        axes = self.axes
        return self.kind == "PRIMARY" and self.value("GROUPS") is True and bool(axes) and axes[0] == 0


def _data_size(hdu: _Hdu) -> int:
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


def _read_header(data: bytes, start: int, index: int) -> _Hdu:
    """The header starting at ``start``: its cards up to END, read one by one (so a header costs
    time in proportion to its length in the file, never to a number written in it)."""
    cards: list[str] = []
    values: dict[str, str] = {}
    pos = start
    while True:
        if pos + CARD > len(data):
            raise _HeaderError("a header has no END card")
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
        raise _HeaderError("a header does not start with SIMPLE (first) or XTENSION (others)")
    data_start = start + -(-(pos - start) // BLOCK) * BLOCK
    hdu = _Hdu(index, start, data_start, data_start, tuple(cards), values)
    if index == 0 and hdu.value("SIMPLE") is not True:
        raise _HeaderError("SIMPLE is not T: the file does not conform to the FITS standard")
    return hdu


def _with_data(hdu: _Hdu, file_size: int) -> _Hdu:
    size = _data_size(hdu)
    if hdu.data_start + size > file_size:
        raise _HeaderError(
            f"a header declares {size:,} bytes of data, more than the file holds after it "
            f"({max(0, file_size - hdu.data_start):,})"
        )
    return dataclasses.replace(hdu, data_end=hdu.data_start + size)


def _walk(data: bytes) -> Iterator[_Hdu]:
    """Each HDU in turn, its declared sizes checked against the file's before it is yielded;
    raises _HeaderError at the first one that breaks the standard."""
    pos = 0
    index = 0
    while pos < len(data):
        hdu = _read_header(data, pos, index)
        if hdu.is_compressed_image:
            # Yielded before its table's size is checked: the caller refuses it by name.
            yield hdu
            return
        hdu = _with_data(hdu, len(data))
        yield hdu
        pos = hdu.end
        index += 1


@dataclass(frozen=True)
class FitsLayout:
    """What the headers say about the first image HDU, read before its data."""

    index: int
    shape: tuple[int, ...]  # numpy order: (bands, height, width) or (height, width)
    bitpix: int
    bands: tuple[str, ...]
    # A cube whose header names no bands (no BAND0-2): its planes were taken as g, r, z.
    bands_assumed: bool = False
    # Where the image HDU lies in the file: its header's first byte and its data's last.
    start: int = 0
    end: int = 0

    @property
    def height(self) -> int:
        return self.shape[-2]

    @property
    def width(self) -> int:
        return self.shape[-1]

    @property
    def band_count(self) -> int:
        return 1 if len(self.shape) == 2 else self.shape[0]

    def decoded_bytes(self) -> int:
        values = math.prod(self.shape)
        per_value = abs(self.bitpix) // 8 + _BYTES_PER_VALUE
        return values * per_value + self.height * self.width * 4 * _WORKING_PLANES


def is_fits(data: bytes) -> bool:
    return data.startswith(FITS_MAGIC)


def _unreadable(exc: Exception) -> ImageDecodeError:
    return ImageDecodeError("the FITS file could not be read: %(detail)s", detail=str(exc))


def _shape_without_unit_axes(axes: tuple[int, ...]) -> tuple[int, ...]:
    # FITS lists axes fastest first; numpy's order is the reverse.
    shape = axes[::-1]
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _band_names(hdu: _Hdu) -> tuple[str, ...]:
    # The Legacy Surveys cutout service names its planes BAND0, BAND1, BAND2. Called for a
    # three-plane cube only, so it reads three keywords, whatever the header says. Empty when
    # they are not all there: the caller then assumes g, r, z, and says so.
    names = tuple(str(hdu.value(f"BAND{i}") or "").strip().lower() for i in range(len(CUBE_BANDS)))
    return names if all(names) else ()


def _image_hdu(data: bytes) -> _Hdu:
    """The first HDU holding an image; tables and empty HDUs before it are stepped over."""
    saw_table = False
    try:
        for hdu in _walk(data):
            if hdu.is_compressed_image:
                raise ImageDecodeError(
                    "tile-compressed FITS images (%(method)s) are not accepted: "
                    "send the uncompressed file (funpack)",
                    method=str(hdu.value("ZCMPTYPE") or "unknown compression")[:20],
                )
            if hdu.kind in ("BINTABLE", "TABLE"):
                saw_table = True
            elif hdu.kind in ("PRIMARY", "IMAGE") and hdu.axes and not hdu.is_random_groups:
                if hdu.kind == "IMAGE" and (
                    hdu.integer("PCOUNT", default=0),
                    hdu.integer("GCOUNT", default=1),
                ) != (0, 1):
                    raise _HeaderError("an IMAGE extension must have PCOUNT = 0 and GCOUNT = 1")
                return hdu
    except _HeaderError as exc:
        raise _unreadable(exc) from exc
    if saw_table:
        raise ImageDecodeError("the FITS file holds a table, not an image")
    raise ImageDecodeError("the FITS file holds no image")


def inspect(data: bytes, *, max_pixels: int) -> FitsLayout:
    """Find the first image HDU and check its shape from the headers, without reading pixels.

    The headers are read here, not by astropy: every count they declare is checked before
    anything is allocated or looped over, so a 2,880-byte header cannot cost more than its
    length (docs/fits.md).
    """
    if not is_fits(data):
        raise _unreadable(ValueError("the file does not start with SIMPLE  ="))
    hdu = _image_hdu(data)
    layout = FitsLayout(
        index=hdu.index,
        shape=_shape_without_unit_axes(hdu.axes),
        bitpix=hdu.bitpix,
        bands=(GREY_BAND,),
        start=hdu.start,
        end=hdu.data_end,
    )
    _check_layout(layout, max_pixels=max_pixels)
    if len(layout.shape) == 3:
        named = _band_names(hdu)
        layout = dataclasses.replace(layout, bands=named or CUBE_BANDS, bands_assumed=not named)
        _check_bands(layout)
    return layout


def _check_layout(layout: FitsLayout, *, max_pixels: int) -> None:
    shape = layout.shape
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] != len(CUBE_BANDS)):
        # At most four axes of 12 digits are shown: the shape comes from the sender.
        shown = "x".join(str(n)[:12] for n in shape[:4]) + ("x..." if len(shape) > 4 else "")
        raise ImageDecodeError(
            "the FITS image has shape %(shape)s: send one band (height x width) "
            "or a g, r, z cube (3 x height x width)",
            shape=shown,
        )
    if min(shape) <= 0:
        raise ImageDecodeError("the image has no pixels")
    if shape[-1] * shape[-2] > max_pixels:
        raise ImageDecodeError(
            "the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels",
            width=str(shape[-1])[:20],
            height=str(shape[-2])[:20],
            limit=Count(max_pixels),
        )


def _check_bands(layout: FitsLayout) -> None:
    if sorted(layout.bands) != sorted(CUBE_BANDS):
        raise ImageDecodeError(
            "the FITS cube has bands %(bands)s: only g, r, z cubes are accepted",
            bands=", ".join(band[:20] for band in layout.bands),
        )


def decals_rgb(
    images: list[np.ndarray],
    bands: tuple[str, ...],
    *,
    scales: dict[str, tuple[int, float]] = DECALS_SCALES,
    m: float = DECALS_M,
    q: float = DECALS_Q,
) -> np.ndarray:
    """The viewer's sdss_rgb: float32 (H, W, 3) in [0, 1] from band images in nanomaggies.

    Every band is scaled and softened, ``x = b * scale + m``; the mean of ``max(0, x)`` is the
    intensity ``I``; each plane is ``x * asinh(Q * I) / sqrt(Q) / I``, clipped to [0, 1].
    """
    intensity = np.zeros(images[0].shape, np.float32)
    for image, band in zip(images, bands, strict=True):
        _, scale = scales[band]
        intensity += np.maximum(0, image * scale + m)
    intensity /= len(bands)
    stretched = np.arcsinh(q * intensity) / np.sqrt(q)
    intensity += (intensity == 0.0) * 1e-6
    rgb = np.zeros((*intensity.shape, 3), np.float32)
    for image, band in zip(images, bands, strict=True):
        plane, scale = scales[band]
        rgb[:, :, plane] = (image * scale + m) * stretched / intensity
    return np.clip(rgb, 0, 1)


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """One band through the same recipe as an r image, put in all three planes."""
    plane = decals_rgb([image], (GREY_BAND,))[:, :, DECALS_SCALES[GREY_BAND][0]]
    return np.repeat(plane[:, :, None], 3, axis=2)


def _image_values(data: bytes, layout: FitsLayout) -> np.ndarray:
    """The image HDU's values as float32, scaled (BSCALE, BZERO) and blanked (BLANK) by astropy.

    Only that HDU's bytes, checked by inspect(), reach astropy: it never walks the headers of
    the others, whatever they declare.
    """
    from astropy.io import fits as astropy_fits  # only when a FITS file arrives

    with warnings.catch_warnings():
        # Non-standard cards are read as astropy can; what matters was checked by inspect().
        warnings.simplefilter("ignore")
        try:
            hdu = astropy_fits.ImageHDU.fromstring(data[layout.start : layout.end])
            return np.asarray(hdu.data, dtype=np.float32).reshape(layout.shape)
        except Exception as exc:  # astropy raises many kinds on a hostile file
            raise _unreadable(exc) from exc


def read_rgb(data: bytes, layout: FitsLayout) -> np.ndarray:
    """uint8 (H, W, 3) with north up: the image HDU found by inspect(), coloured.

    Blank pixels (NaN or infinite) count as empty sky (0); an image with no finite pixel is refused.
    """
    values = _image_values(data, layout)
    if not np.isfinite(values).any():
        raise ImageDecodeError("the FITS image has no finite values (all NaN or infinite)")
    np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    rgb = grey_rgb(values) if values.ndim == 2 else decals_rgb(list(values), layout.bands)
    # FITS rows run south to north; images are drawn from the top.
    return np.round(rgb[::-1] * 255.0).astype(np.uint8)


def preview_png(data: bytes, layout: FitsLayout) -> bytes:
    """The coloured image as PNG, for pages: browsers cannot draw a FITS file."""
    buffer = io.BytesIO()
    Image.fromarray(read_rgb(data, layout), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


# --- The stored copy: without the keywords that name a person or a place ------------------

# Who observed or owns the data, and where the instrument stood (to a backyard's precision,
# for an amateur's camera). The astrometry (WCS), times, instrument and survey stay.
PRIVATE_KEYWORDS = frozenset(
    {"OBSERVER", "OBSERVR", "AUTHOR", "USER", "USERNAME", "OWNER", "SWOWNER", "OPERATOR", "EMAIL"}
    | {"E-MAIL", "CONTACT", "PI", "PI-NAME", "PINAME", "PI_NAME", "PROPOSER", "OBSERVAT", "SITE"}
    | {"SITENAME", "SITELAT", "SITELONG", "SITELON", "SITEELEV", "SITEALT", "SITE-LAT", "SITE-LON"}
    | {"SITE-ELV", "LATITUDE", "LONGITUD", "LAT-OBS", "LONG-OBS", "ELEV-OBS", "ALT-OBS", "OBS-LAT"}
    | {"OBS-LONG", "OBS-LON", "OBS-ELEV", "OBS-ALT", "OBSLAT", "OBSLONG", "OBSELEV", "GEOLAT"}
    | {"GEOLON", "GEOELEV", "GEO-LAT", "GEO-LONG"}
)
PRIVATE_PREFIXES = ("OBSGEO-", "GPS-", "GPS_")
# The words of long (HIERARCH) keywords that mark them private, as in ESO's
# "HIERARCH ESO TEL GEOLAT" or "HIERARCH ESO OBS PI-COI NAME".
_PRIVATE_HIERARCH_WORDS = PRIVATE_KEYWORDS | {"PI-COI", "OBSERVATORY"}


def _is_private(card: str) -> bool:
    keyword = card[:8].rstrip().upper()
    if keyword == "HIERARCH":
        words = card[8:].split("=", 1)[0].upper().split()
        return any(word in _PRIVATE_HIERARCH_WORDS or word.startswith(PRIVATE_PREFIXES) for word in words)
    return keyword in PRIVATE_KEYWORDS or keyword.startswith(PRIVATE_PREFIXES)


def _kept_cards(cards: tuple[str, ...]) -> list[str]:
    kept: list[str] = []
    dropping = False
    for card in cards:
        keyword = card[:8].rstrip().upper()
        if keyword == "CONTINUE" and dropping:
            continue  # the rest of a long string value that is being dropped
        dropping = _is_private(card)
        if not dropping:
            kept.append(card)
    return kept


def strip_private_keywords(data: bytes) -> bytes:
    """A copy of a FITS file without the keywords that name a person or a place
    (PRIVATE_KEYWORDS, PRIVATE_PREFIXES), its data units copied byte for byte.

    A header that loses a card loses its CHECKSUM too (it would no longer match); DATASUM,
    which covers the data only, stays true. Anything after the last HDU that can be read
    (a damaged extension, trailing bytes) is left out: its keywords cannot be checked.
    """
    parts: list[bytes] = []
    changed = False
    end = 0
    try:
        for hdu in _walk(data):
            if hdu.is_compressed_image:
                break  # refused on upload; nothing to keep after it
            kept = _kept_cards(hdu.cards)
            if len(kept) != len(hdu.cards):
                changed = True
                kept = [card for card in kept if card[:8].rstrip().upper() != "CHECKSUM"]
            header = "".join(kept) + "END".ljust(CARD)
            header = header.ljust(-(-len(header) // BLOCK) * BLOCK)
            parts.append(header.encode("latin-1"))
            parts.append(data[hdu.data_start : min(hdu.end, len(data))])
            end = hdu.end
    except _HeaderError:
        pass
    if not changed and end >= len(data):
        return data
    return b"".join(parts)


# The keywords of the image plane's celestial WCS (FITS WCS papers I-II, SIP), for pixel axes
# 1 and 2 and the primary description only. Anything else in the header never reaches
# astropy.wcs: wcslib sizes its arrays from WCSAXES and NAXIS (WCSAXES = 10000 took 22 s and
# 2.1 GB, 100000 crashed the process), and astropy loops over SIP orders squared in Python
# (A_ORDER = 3000 took 29 s); distortion tables and alternate descriptions are not needed
# for the centre of the image.
_WCS_KEYWORD = re.compile(
    r"(?:(?:CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CROTA)[12]|(?:CD|PC)[12]_[12]|P[VS][12]_[0-9]{1,2}"
    r"|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|DATE-OBS|MJD-OBS"
    r"|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_DMAX|B_DMAX|(?:A|B|AP|BP)_[0-9]_[0-9])"
)
_SIP_ORDERS = ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER")
# SIP fits in practice stop at order 5 to 7 (Shupe et al. 2005; astrometry.net, SCAMP).
MAX_SIP_ORDER = 9


def _celestial_wcs_cards(hdu: _Hdu, layout: FitsLayout) -> list[str] | None:
    """The cards astropy.wcs is given: NAXIS = 2 with the image's size, then the first card of
    each celestial WCS keyword of pixel axes 1 and 2; None when a SIP order is out of range."""
    for keyword in _SIP_ORDERS:
        order = hdu.value(keyword)
        if order is not None and not (isinstance(order, int) and 0 <= order <= MAX_SIP_ORDER):
            return None
    cards = [
        f"{'SIMPLE':<8}= {'T':>20}",
        f"{'BITPIX':<8}= {hdu.bitpix:>20}",
        f"{'NAXIS':<8}= {2:>20}",
        f"{'NAXIS1':<8}= {layout.width:>20}",
        f"{'NAXIS2':<8}= {layout.height:>20}",
    ]
    seen: set[str] = set()
    for card in hdu.cards:
        keyword = card[:8].rstrip().upper()
        if card[8:10] == "= " and keyword not in seen and _WCS_KEYWORD.fullmatch(keyword):
            seen.add(keyword)
            cards.append(card)
    return [card.ljust(CARD) for card in cards]


def sky_centre(data: bytes, layout: FitsLayout) -> tuple[float, float] | None:
    """The ICRS (ra, dec) in degrees of the image's centre, from its celestial WCS; None when
    the header has none, or one astropy cannot use.

    Only the celestial WCS cards of the image HDU's header, walked and checked by inspect(),
    reach astropy.wcs (_WCS_KEYWORD): never the raw file, nor sizes it would allocate from.
    """
    from astropy.io import fits as astropy_fits  # only when a FITS file arrives
    from astropy.wcs import WCS

    try:
        hdu = next(h for h in _walk(data) if h.index == layout.index)
    except (StopIteration, _HeaderError):
        return None
    cards = _celestial_wcs_cards(hdu, layout)
    if cards is None:
        return None
    with warnings.catch_warnings():
        # A header that is not quite standard gives warnings, or no usable WCS: no position.
        warnings.simplefilter("ignore")
        try:
            header = astropy_fits.Header.fromstring("".join(cards))
            celestial = WCS(header).celestial
            if not celestial.has_celestial:
                return None
            centre = celestial.pixel_to_world((layout.width - 1) / 2, (layout.height - 1) / 2).icrs
            ra, dec = float(centre.ra.deg) % 360.0, float(centre.dec.deg)
        except Exception:  # noqa: BLE001 - astropy raises many kinds on a hostile header
            return None
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        return None
    return round(ra, 6) % 360.0, round(dec, 6)
