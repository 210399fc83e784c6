"""The model card (MODEL_CARD.md beside the model) as sanitised HTML for the model page."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MODEL_CARD_FILENAME = "MODEL_CARD.md"
# Tags a rendered model card may keep: Markdown's output, minus images (the card links the
# figures by a path relative to ml/models/, and the page draws them from the numbers anyway).
CARD_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol",
    "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
CARD_BASE_HEADING_LEVEL = 3
CARD_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}
# The card's sections (ml/model_card.py's "## " headings) whose numbers the page already shows
# in its own tables (metrics, per-class recall, export candidates): shown once, not twice.
CARD_SECTIONS_ON_THE_PAGE = ("Metrics of the shipped TFLite file", "Export check")


def render_model_card(text: str) -> str:
    """MODEL_CARD.md as HTML that is safe to embed: ml/model_card.py writes it from training
    output that the site does not control, so the HTML is sanitised after rendering."""
    # Imported here, by the one page that needs them, rather than in every web worker, whose
    # memory budget docs/benchmarks.md tracks.
    import markdown
    import nh3

    # The card sits under the page's "Model card" heading (an h2): its own "#" becomes an h3,
    # so that the page keeps one h1 and a heading order that screen readers can follow.
    html = markdown.markdown(
        text,
        extensions=["tables", "fenced_code", "toc"],
        extension_configs={"toc": {"baselevel": CARD_BASE_HEADING_LEVEL}},
        output_format="html",
    )
    return nh3.clean(
        html,
        tags=CARD_TAGS,
        attributes=CARD_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def without_sections(text: str, headings: Iterable[str]) -> tuple[str, list[str]]:
    """The Markdown without its "## " sections of these headings, and the headings removed."""
    wanted = set(headings)
    kept: list[str] = []
    removed: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            heading = line[3:].strip()
            skipping = heading in wanted
            if skipping:
                removed.append(heading)
        elif line.startswith("# "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept), removed


def read_model_card(model_dir: Path) -> tuple[str, list[str]]:
    """The rendered card beside the model ("" when none was shipped), without the sections
    whose numbers the page shows in its own tables, and the headings of those sections."""
    path = model_dir / MODEL_CARD_FILENAME
    if not path.is_file():
        return "", []
    text, removed = without_sections(path.read_text(encoding="utf-8"), CARD_SECTIONS_ON_THE_PAGE)
    return render_model_card(text), removed
