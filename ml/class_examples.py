"""One real DECaLS cutout per Galaxy10 class for the classes page, with its credit.

    python -m ml.class_examples [--data ../shared/data] [--out static/classifier/examples]

Images and votes: Galaxy Zoo DECaLS (Walmsley et al. 2022), CC-BY-4.0, from
``gz_decals_votes/``. For each class the example is, in order of preference:

1. a galaxy whose exact Galaxy10 DECaLS class is known (``members_on_disk.csv``, the
   cross-matched members), the one whose own votes give that class the most weight;
2. otherwise, a galaxy with at least ``MIN_VOTES`` smooth-or-featured votes (artifact votes
   left out) whose votes, read through the decision tree of ``ml.labels``
   (``ml.votes.vote_targets``), give that class a larger share than any other class, and at
   least ``MIN_SHARE``: the galaxy with the largest such share.

It writes ``<class index>.jpg`` (small, re-encoded JPEG) and ``CREDITS.csv``, which says
for every class which galaxy (iauname, ra, dec) was chosen and why. The classes page reads
that file; nothing reads ``../shared`` at run time.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml import votes
from ml.labels import NUM_CLASSES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "static" / "classifier" / "examples"
SIZE = 160
MAX_BYTES = 15_000
MIN_VOTES = 20
MIN_SHARE = 0.4
CREDIT_FIELDS = ("class_index", "file", "iauname", "ra", "dec", "votes", "vote_share", "reason")


@dataclass(frozen=True)
class Example:
    class_index: int
    source: Path
    iauname: str
    ra: float
    dec: float
    votes: int
    vote_share: float
    reason: str


def choose(data: Path) -> list[Example]:
    """The example of each class, 0..9 (``SystemExit`` if a class has none)."""
    folder = data / "gz_decals_votes"
    table = votes.read_vote_table(folder / "labels.csv")
    with (folder / "labels.csv").open(newline="") as handle:
        positions = {row["iauname"]: (float(row["ra"]), float(row["dec"])) for row in csv.DictReader(handle)}
    shares, _coverage = votes.vote_targets(table.counts)
    # Votes for "star or artifact" drop out of the tree, so they do not count towards MIN_VOTES.
    first_question = table.question("smooth-or-featured")[:, :2].sum(axis=1)
    members = {}
    with (data / "galaxy10_decals_coords" / "members_on_disk.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["file"].startswith("gz_decals_votes/"):
                members[row["iauname"]] = int(row["label_index"])

    examples = []
    for class_index in range(NUM_CLASSES):
        known = [i for i, name in enumerate(table.iaunames) if members.get(name) == class_index]
        if known:
            # Ties go to the better-voted galaxy.
            best = max(known, key=lambda i: (shares[i, class_index], first_question[i]))
            reason = "Galaxy10 DECaLS member of this class (cross-match within 2 arcsec)"
        else:
            implied = np.argmax(shares, axis=1) == class_index
            candidates = np.flatnonzero((first_question >= MIN_VOTES) & implied)
            if not len(candidates):
                raise SystemExit(f"no galaxy with {MIN_VOTES}+ votes implies class {class_index}")
            best = int(candidates[np.argmax(shares[candidates, class_index])])
            if shares[best, class_index] < MIN_SHARE:
                share = shares[best, class_index]
                raise SystemExit(f"class {class_index}: the best vote share is only {share:.2f}")
            reason = (
                f"no Galaxy10 member of this class on disk; {first_question[best]} volunteer votes give "
                f"this class {shares[best, class_index]:.0%} of their weight through the decision tree, "
                "more than any other class"
            )
        name = table.iaunames[best]
        ra, dec = positions[name]
        examples.append(
            Example(
                class_index=class_index,
                source=folder / table.files[best],
                iauname=name,
                ra=ra,
                dec=dec,
                votes=int(first_question[best]),
                vote_share=float(shares[best, class_index]),
                reason=reason,
            )
        )
    return examples


def thumbnail(source: Path) -> bytes:
    """A SIZE x SIZE JPEG of the whole cutout, under MAX_BYTES."""
    with Image.open(source) as image:
        small = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    for quality in (85, 80, 75, 70, 60):
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
        if buffer.tell() <= MAX_BYTES:
            return buffer.getvalue()
    raise SystemExit(f"{source}: no JPEG of it fits in {MAX_BYTES} bytes")


def write(examples: list[Example], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "CREDITS.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CREDIT_FIELDS)
        for example in examples:
            filename = f"{example.class_index}.jpg"
            (out / filename).write_bytes(thumbnail(example.source))
            writer.writerow(
                [
                    example.class_index,
                    filename,
                    example.iauname,
                    f"{example.ra:.6f}",
                    f"{example.dec:.6f}",
                    example.votes,
                    f"{example.vote_share:.3f}",
                    example.reason,
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the images and CREDITS.csv go")
    args = parser.parse_args()
    write(choose(args.data), args.out)


if __name__ == "__main__":
    main()
