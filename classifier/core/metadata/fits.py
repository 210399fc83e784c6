"""FITS: the stored copy without the header keywords that name a person or a place; the data
units are copied byte for byte (docs/fits.md)."""

from __future__ import annotations

from classifier.core.fits_header import BLOCK, CARD, Headers, read_headers

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


def strip_private_keywords(data: bytes, headers: Headers | None = None) -> bytes:
    """A copy of a FITS file without the keywords that name a person or a place
    (PRIVATE_KEYWORDS, PRIVATE_PREFIXES), its data units copied byte for byte.

    A header that loses a card loses its CHECKSUM too (it would no longer match); DATASUM,
    which covers the data only, stays true. Anything after the last HDU that can be read
    (a damaged extension, trailing bytes) is left out: its keywords cannot be checked.
    ``headers`` are the file's, when the upload's validation has walked them already.
    """
    parts: list[bytes] = []
    changed = False
    end = 0
    for hdu in (headers or read_headers(data)).hdus:
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
    if not changed and end >= len(data):
        return data
    return b"".join(parts)
