"""Sky positions: parsing what people and catalogues give (degrees, or sexagesimal through
astropy), and the Legacy Surveys viewer link for a position. No Django: the prediction rows, the
forms, the job catalogues and the cutout fetcher all use it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from classifier.core.exceptions import PositionError

# Six decimals are 3.6 milliarcseconds, far below a 0.524" pixel: positions that round alike
# are the same cutout, fetched and cached once.
COORDINATE_DECIMALS = 6
VIEWER_URL = "https://www.legacysurvey.org/viewer"
VIEWER_ZOOM = 15


@dataclass(frozen=True)
class Position:
    """A position in ICRS degrees: 0 <= ra < 360, -90 <= dec <= 90."""

    ra: float
    dec: float


def _coordinate(value: Any, name: str) -> float:
    if isinstance(value, bool) or value is None:
        raise PositionError(f"{name} must be a number of degrees")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise PositionError(f"{name} is empty; give it in degrees")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise PositionError(f"{name} is not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise PositionError(f"{name} must be a finite number of degrees, not {str(value)[:40]!r}")
    return number


def parse_position(ra: Any, dec: Any) -> Position:
    """A Position from numbers or decimal strings in degrees; raises PositionError."""
    ra_deg, dec_deg = _coordinate(ra, "ra"), _coordinate(dec, "dec")
    if not 0 <= ra_deg < 360:
        raise PositionError(f"ra must be in [0, 360) degrees, got {ra_deg:g}")
    if not -90 <= dec_deg <= 90:
        raise PositionError(f"dec must be in [-90, 90] degrees, got {dec_deg:g}")
    # An ra just under 360 rounds to 360.0, the same meridian as 0: without the wrap the row's
    # check constraint (0 <= ra < 360) refused it as a 503.
    return Position(round(ra_deg, COORDINATE_DECIMALS) % 360.0, round(dec_deg, COORDINATE_DECIMALS))


def parse_sky_position(text: str) -> Position:
    """One position typed by a person: "150.1 2.2", "150.1, 2.2" (degrees) or sexagesimal
    ("10h00m28.6s +02d12m21s", "10:00:28.6 +02:12:21", hours for RA), read by astropy."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    cleaned = " ".join(text.replace(",", " ").split())
    if not cleaned:
        raise PositionError("the position is empty")
    parts = cleaned.split(" ")
    try:
        if len(parts) == 2 and all(_is_number(part) for part in parts):
            return parse_position(parts[0], parts[1])
        coord = SkyCoord(cleaned, unit=(u.hourangle, u.deg), frame="icrs")
    except PositionError:
        raise
    except (ValueError, TypeError, u.UnitsError) as exc:
        raise PositionError(f"not a sky position: {cleaned[:60]!r} ({exc})"[:300]) from None
    return parse_position(float(coord.ra.deg), float(coord.dec.deg))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_coordinate(value: float) -> str:
    return f"{value:.{COORDINATE_DECIMALS}f}"


def viewer_url(ra: float, dec: float) -> str:
    """The Legacy Surveys viewer centred on the position."""
    query = {"ra": format_coordinate(ra), "dec": format_coordinate(dec), "zoom": VIEWER_ZOOM}
    return f"{VIEWER_URL}?{urlencode(query)}"
