"""The inputs of a visit's billing summary, gathered from the session's timeline, the
registry and the controlled-substance record; the core (``clinical/billing.py``) decides."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from django.utils import timezone

from ketamine_clinic.clinical.billing import Given, Summary, billing_rules, summarize
from ketamine_clinic.web.documents.selectors import session_summary
from ketamine_clinic.web.sessions import selectors as sessions
from ketamine_clinic.web.stock.models import LedgerEntry


def _ndcs(session: Any) -> list[str]:
    """NDCs of the ketamine drawn for this session in the controlled-substance record."""
    return sorted(set(LedgerEntry.objects.filter(session=session)
                      .values_list("product__ndc", flat=True)))


def billing_summary(session: Any) -> tuple[Summary, dict[str, Any]]:
    """The summary and the inputs it was computed from (shown with it and in the CSV)."""
    snap = sessions.snapshot(session, now=timezone.now(), gates=False)
    totals = snap.totals
    charted = session_summary(session)
    stopped = totals.stopped_at if totals is not None else None
    given = [Given(drug=m.drug, dose=Fraction(str(m.dose)), unit=m.unit, route=m.route,
                   at=m.at) for m in charted.medicines]
    diagnoses = [f"{d.code}" for d in session.patient.diagnoses.all()
                 if not getattr(d, "in_error", False)]
    infusing = (Fraction(totals.infusing_time.total_seconds()) / 60
                if totals is not None and stopped is not None else None)
    summary = summarize(
        rules=billing_rules(), started_at=totals.started_at if totals is not None else None,
        stopped_at=stopped, infusing_minutes=infusing,
        ketamine_mg=totals.total_mg if totals is not None and stopped is not None else None,
        ketamine_ndcs=_ndcs(session), given=given, diagnoses=diagnoses)
    inputs = {"session": session.pk, "order": session.order_id,
              "protocol_version": session.order.protocol_version_id,
              "rules_version": summary.rules_version,
              "infusing_min": str(infusing) if infusing is not None else "",
              "paused_min": str(Fraction(totals.paused_time.total_seconds()) / 60)
              if totals is not None else ""}
    return summary, inputs
