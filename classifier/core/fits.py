"""FITS cutouts to RGB, the way the Legacy Surveys viewer colours DECaLS g, r, z images.

Django-free, like classifier.core.preprocessing. The headers are walked once, card by card
(classifier.core.fits_header), and every size they declare is checked against the limits
before anything is allocated or iterated from it; only then is the one image HDU handed to
astropy, which is imported inside
the function that decodes it, never at module import: a worker that is never sent a FITS
file does not pay for it (docs/fits.md has the measured cost). Tile-compressed images are
refused: their tiles would be inflated by a decoder whose output nothing bounds.

The colour recipe is the viewer's ``dr2_rgb`` (``sdss_rgb`` with the DECaLS scales), cited
and written out in docs/fits.md.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from classifier.core.exceptions import GroupedNumber, PositionError
from classifier.core.fits_header import CARD, Hdu, HeaderError, Headers, read_headers
from classifier.core.positions import parse_position
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


@dataclass(frozen=True)
class FitsLayout:
    """What the headers say about the first image HDU, read before its data."""

    # Every header of the file, walked once, and the image HDU's among them, whose WCS
    # gives the sky centre.
    headers: Headers
    hdu: Hdu
    bands: tuple[str, ...]
    # A cube whose header names no bands (no BAND0-2): its planes were taken as g, r, z.
    bands_assumed: bool = False

    @property
    def index(self) -> int:
        return self.hdu.index

    @property
    def start(self) -> int:
        """The image HDU's first header byte in the file."""
        return self.hdu.start

    @property
    def end(self) -> int:
        """Just past the image HDU's declared data."""
        return self.hdu.data_end

    @property
    def bitpix(self) -> int:
        return self.hdu.bitpix

    @property
    def shape(self) -> tuple[int, ...]:
        """numpy order: (bands, height, width) or (height, width)."""
        return _shape_without_unit_axes(self.hdu.axes)

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


def _band_names(hdu: Hdu) -> tuple[str, ...]:
    # The Legacy Surveys cutout service names its planes BAND0, BAND1, BAND2. Called for a
    # three-plane cube only, so it reads three keywords, whatever the header says. Empty when
    # they are not all there: the caller then assumes g, r, z, and says so.
    names = tuple(str(hdu.value(f"BAND{i}") or "").strip().lower() for i in range(len(CUBE_BANDS)))
    return names if all(names) else ()


def _image_hdu(headers: Headers) -> Hdu:
    """The first HDU holding an image; tables and empty HDUs before it are stepped over."""
    saw_table = False
    try:
        for hdu in headers.hdus:
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
                    raise HeaderError("an IMAGE extension must have PCOUNT = 0 and GCOUNT = 1")
                return hdu
    except HeaderError as exc:
        raise _unreadable(exc) from exc
    if headers.error is not None:
        # The walk stopped at a broken header before any image.
        raise _unreadable(headers.error) from headers.error
    if saw_table:
        raise ImageDecodeError("the FITS file holds a table, not an image")
    raise ImageDecodeError("the FITS file holds no image")


def inspect(data: bytes, *, max_pixels: int) -> FitsLayout:
    """Find the first image HDU and check its shape from the headers, without reading pixels.

    The headers are read here, not by astropy: every count they declare is checked before
    anything is allocated or looped over, so a 2,880-byte header cannot cost more than its
    length (docs/fits.md).
    """
    # The walk refuses a file whose first card is not SIMPLE = T.
    headers = read_headers(data)
    layout = FitsLayout(headers=headers, hdu=_image_hdu(headers), bands=(GREY_BAND,))
    _check_layout(layout, max_pixels=max_pixels)
    if len(layout.shape) == 3:
        named = _band_names(layout.hdu)
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
            limit=GroupedNumber(max_pixels),
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


# The keywords of the image plane's celestial WCS (FITS WCS papers I-II, SIP), for pixel axes
# 1 and 2 and the primary description only. Anything else in the header never reaches
# astropy.wcs: wcslib sizes its arrays from WCSAXES and NAXIS, and astropy loops over SIP
# orders squared in Python, so a few header cards could cost minutes and gigabytes;
# distortion tables and alternate descriptions are not needed for the centre of the image.
_WCS_KEYWORD = re.compile(
    r"(?:(?:CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CROTA)[12]|(?:CD|PC)[12]_[12]|P[VS][12]_[0-9]{1,2}"
    r"|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|DATE-OBS|MJD-OBS"
    r"|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_DMAX|B_DMAX|(?:A|B|AP|BP)_[0-9]_[0-9])"
)
_SIP_ORDERS = ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER")
# SIP fits in practice stop at order 5 to 7 (Shupe et al. 2005; astrometry.net, SCAMP).
MAX_SIP_ORDER = 9


def _celestial_wcs_cards(layout: FitsLayout) -> list[str] | None:
    """The cards astropy.wcs is given: NAXIS = 2 with the image's size, then the first card of
    each celestial WCS keyword of pixel axes 1 and 2; None when a SIP order is out of range."""
    hdu = layout.hdu
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


def sky_centre(layout: FitsLayout) -> tuple[float, float] | None:
    """The ICRS (ra, dec) in degrees of the image's centre, from its celestial WCS; None when
    the header has none, or one astropy cannot use.

    Only the celestial WCS cards of the image HDU's header, walked and checked by inspect(),
    reach astropy.wcs (_WCS_KEYWORD): never the raw file, nor sizes it would allocate from.
    The header is the layout's: the file is not walked again.
    """
    from astropy.io import fits as astropy_fits  # only when a FITS file arrives
    from astropy.wcs import WCS

    cards = _celestial_wcs_cards(layout)
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
    try:
        # The same checks, rounding and wrap at ra = 360 as a position typed or sent.
        position = parse_position(ra, dec)
    except PositionError:
        return None
    return position.ra, position.dec
