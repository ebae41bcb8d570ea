"""The stock record's one window onto the infusion chart (web/sessions).

Everything the ledger needs from a session goes through these functions, so the bedside
can change its shape without the stock record changing: the ketamine given is always the
charted dose, derived from the session's effective rate segments and boluses (the exact
total of ``clinical.monitoring.infusion_totals``), never typed a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.db.models import Q

from ketamine_clinic.clinical import units
from ketamine_clinic.web.sessions import selectors
from ketamine_clinic.web.sessions.models import InfusionSession


@dataclass(frozen=True)
class ChartedDose:
    """What the chart says about a session's ketamine, at ``as_of``."""

    given_mg: Fraction
    status: str  # not_started, running, paused, stopped
    as_of: datetime | None
    session_state: str
    inputs: dict[str, Any]

    @property
    def infusion_over(self) -> bool:
        return self.status in ("stopped", "not_started") and self.session_state not in (
            "infusing", "paused")


def charted_dose(session: Any, *, now: datetime | None = None) -> ChartedDose:
    """Total ketamine given in ``session`` [mg] from its effective timeline entries."""
    snap = selectors.snapshot(session, now=now, gates=False)
    totals = snap.totals
    if totals is None:
        return ChartedDose(Fraction(0), "not_started", None, snap.state.value, {})
    return ChartedDose(totals.total_mg, totals.status.value, totals.as_of, snap.state.value,
                       {"total_mg_exact": str(totals.total_mg),
                        "segments": len(totals.segments),
                        "events": [e.to_dict() for e in totals.events]})


def bag_concentration_mg_per_ml(session: Any) -> Fraction:
    """The ordered bag's concentration [mg/mL] (drug in the bag ÷ its final volume)."""
    order = session.order
    return units.concentration_mg_per_ml(Fraction(str(order.bag_drug_mg)),
                                         Fraction(str(order.bag_volume_ml)))


def session_is_closed(session: Any) -> bool:
    """The session is over (discharged, transferred or abandoned): no more draws."""
    return session.state in ("discharged", "transferred", "abandoned")


def sessions_for_stock(site: Any, *, start: datetime, end: datetime) -> list[Any]:
    """The site's sessions scheduled in [start, end) and any still open from before: the
    stock room's list of sessions to draw for or reconcile."""

    open_states = ("checked_in", "pre_assessment_complete", "premedication_given",
                   "infusing", "paused", "stopped", "recovering")
    return list(InfusionSession.objects.filter(site=site).filter(
        Q(scheduled_for__gte=start, scheduled_for__lt=end) | Q(state__in=open_states))
        .select_related("patient").order_by("chair", "scheduled_for"))
