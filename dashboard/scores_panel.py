"""Rating a task or a run on its page: thumbs up/down and a 1-5 rating with a comment, kept
per person, and every score the viewer may read (docs/quality.md).

Scores are written through the viewer's Tracker (`data.tracker()`), so Postgres decides
(row-level security, migration 0020): a person rates what they may read, as themselves, and
changes only their own rating. Not cached: a rating shows at once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.safe import md
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError

THUMBS = "thumbs"  # boolean score: true is thumbs up
RATING = "rating"  # numeric score 1..5
THUMB_CHOICES = ("No thumbs", "Thumbs up", "Thumbs down")
RATING_CHOICES = ("No rating", "1", "2", "3", "4", "5")


def score_panel(*, task_id: str | None = None, run_id: str | None = None) -> None:
    """The scores section of a task page (task_id) or a run page (run_id)."""
    target = {"task_id": task_id} if task_id else {"run_id": run_id}
    tracker = data.tracker()
    scores = tracker.scores(**target)
    me = tracker.viewer
    mine = {s["name"]: s for s in scores if s["author"] == me and s["source"] == "human"}
    st.markdown("#### Scores")
    _rating_form(target, mine, key=f"score_{task_id or run_id}")
    if scores:
        st.dataframe(_table(scores), hide_index=True, key=f"scores_of_{task_id or run_id}")
    else:
        st.caption("No scores yet.")


def _rating_form(target: dict[str, str], mine: dict[str, dict], *, key: str) -> None:
    thumbs, rating = mine.get(THUMBS), mine.get(RATING)
    comment = next((s["comment"] for s in (thumbs, rating) if s and s["comment"]), "")
    with st.form(key, border=True):
        st.caption("Your rating (yours only: others rate for themselves).")
        left, right = st.columns(2)
        thumb = left.radio(
            "Thumbs", THUMB_CHOICES, index=_thumb_index(thumbs), horizontal=True,
            key=f"{key}_thumbs",
        )  # fmt: skip
        stars = right.radio(
            "Rating (1-5)", RATING_CHOICES, index=int(rating["value"]) if rating else 0,
            horizontal=True, key=f"{key}_rating",
        )  # fmt: skip
        note = st.text_area("Comment", value=comment or "", max_chars=4000, key=f"{key}_comment")
        if st.form_submit_button("Save my rating", key=f"{key}_save"):
            _save(target, thumb, stars, note.strip() or None)


def _thumb_index(score: dict | None) -> int:
    if score is None:
        return 0
    return 1 if score["label"] == "true" else 2


def _save(target: dict[str, str], thumb: str, stars: str, comment: str | None) -> None:
    tracker = data.tracker()
    try:
        if thumb != THUMB_CHOICES[0]:
            up = thumb == THUMB_CHOICES[1]
            tracker.score(THUMBS, up, source="human", comment=comment, **target)
        if stars != RATING_CHOICES[0]:
            tracker.score(RATING, int(stars), source="human", comment=comment, **target)
    except (ValidationError, NotFoundError, AccessDeniedError) as exc:
        st.error(md(exc))
        return
    st.toast("Rating saved", icon=":material/check:")
    st.rerun()


def _table(scores: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": [s["name"] for s in scores],
            "value": [_shown(s) for s in scores],
            "by": [s["author"] or "–" for s in scores],
            "source": [s["source"] for s in scores],
            "evaluator": [
                " ".join(filter(None, (s["evaluator"], s["evaluator_version"]))) or "–"
                for s in scores
            ],
            "comment": [s["comment"] or "" for s in scores],
            "when": [s["updated_at"] for s in scores],
        }
    )


def _shown(score: dict[str, Any]) -> str:
    if score["data_type"] == "boolean":
        return "up" if score["label"] == "true" else "down"
    if score["data_type"] == "categorical":
        return score["label"]
    number = f"{score['value']:g}"
    return f"{number} ({score['label']})" if score["label"] else number
