"""What other records ask of a session, without the session area importing them.

Areas above the sessions (the controlled-substance record) depend on sessions, never the
other way round. They register here, in their ``AppConfig.ready()``:

* a **close check**: called when a session in recovery is judged for discharge; it returns
  a :class:`~ketamine_clinic.clinical.bedside.model.RecordHold` when its record does not
  allow the session to close yet (the core's discharge gate shows it as an unmet item);
* an **on-close** action: called after a stop or a discharge is stored, in its own
  transaction (the stock record books the charted dose). A failure there is logged and
  never undoes the chart: the bedside record comes first;
* an **at-discharge** action: called while a discharge is stored, inside its transaction
  (the follow-up area books the series' follow-ups the visit makes due). It answers what it
  booked, for the page to name; a failure there undoes the discharge, so the two commit or
  fail together;
* a **link** to the record's page for this session, shown on the session page;
* a **series summarised** action: called when the series' outcome summaries were worked out
  again, inside that transaction, with each series' last given session (None: none); the
  follow-up area works out again what it keeps of answers that count only after the
  series' last given session. A failure there undoes the write, so the two agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from ketamine_clinic.clinical.bedside.model import RecordHold

if TYPE_CHECKING:
    from ketamine_clinic.web.audit.services import Actor

log = logging.getLogger(__name__)

CloseCheck = Callable[[Any], RecordHold | None]
OnClose = Callable[["Actor", Any], None]


@dataclass(frozen=True)
class RecordLink:
    label: str
    url: str


LinkOf = Callable[[Any], RecordLink | None]


@dataclass(frozen=True)
class FollowUpBooked:
    """A follow-up booked with a discharge: its point, how pages name it, when it is due
    (the clinic's date) and the visit it follows (None: a point of the series' end)."""

    point: str
    label: str
    due_on: date
    session_id: int | None


AtDischarge = Callable[["Actor", Any], Sequence[FollowUpBooked]]

SeriesSummarised = Callable[[Mapping[int, int | None]], None]

_close_checks: list[CloseCheck] = []
_on_close: list[OnClose] = []
_at_discharge: list[AtDischarge] = []
_links: list[LinkOf] = []
_series_summarised: list[SeriesSummarised] = []


def register(*, close_check: CloseCheck | None = None, on_close: OnClose | None = None,
             at_discharge: AtDischarge | None = None, link: LinkOf | None = None,
             series_summarised: SeriesSummarised | None = None) -> None:
    """Register another area's hooks (once, from its ``AppConfig.ready()``)."""
    if close_check is not None and close_check not in _close_checks:
        _close_checks.append(close_check)
    if on_close is not None and on_close not in _on_close:
        _on_close.append(on_close)
    if at_discharge is not None and at_discharge not in _at_discharge:
        _at_discharge.append(at_discharge)
    if link is not None and link not in _links:
        _links.append(link)
    if series_summarised is not None and series_summarised not in _series_summarised:
        _series_summarised.append(series_summarised)


def close_holds(session: Any) -> tuple[RecordHold, ...]:
    return tuple(h for check in _close_checks if (h := check(session)) is not None)


def closed(actor: Actor, session: Any) -> None:
    """A stop or a discharge was stored: let the other records follow."""
    for fn in _on_close:
        try:
            fn(actor, session)
        except Exception:  # a record above must never undo the bedside's entry
            log.exception("after closing session %s: %s failed", session.pk,
                          getattr(fn, "__qualname__", fn))


def discharging(actor: Actor, session: Any) -> tuple[FollowUpBooked, ...]:
    """A discharge is being stored (inside its transaction): what the areas above book
    with it. Nothing is caught: a failure undoes the discharge."""
    return tuple(booked for fn in _at_discharge for booked in fn(actor, session))


def record_links(session: Any) -> list[RecordLink]:
    return [link for fn in _links if (link := fn(session)) is not None]


def series_summarised(last_given: Mapping[int, int | None]) -> None:
    """The series' outcome summaries were worked out again (inside the write's
    transaction): let the areas above follow. Nothing is caught."""
    for fn in _series_summarised:
        fn(last_given)
