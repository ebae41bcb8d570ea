"""The outcome report: every statistic of the report, computed in one pass over the series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.outcomes.measures import (
    Number,
    ResponderThresholds,
    default_responder_thresholds,
)
from ketamine_clinic.clinical.outcomes.records import SeriesOutcome
from ketamine_clinic.clinical.outcomes.statistics import (
    AdverseEventRate,
    MeanChange,
    OpioidChange,
    ReliefSurvival,
    ResponderRates,
    adverse_event_rate,
    mean_pain_change,
    opioid_change,
    relief_survival,
    responder_rates,
)

# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """Everything the outcome report shows, computed in one pass over the series given."""

    n_series: int
    n_patients: int
    responders: ResponderRates
    relief_by_diagnosis: ReliefSurvival
    relief_by_protocol: ReliefSurvival
    pain_change_by_diagnosis: Mapping[str, MeanChange]
    adverse_events: AdverseEventRate
    opioids: OpioidChange
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_series": self.n_series,
            "n_patients": self.n_patients,
            "parameters": dict(self.parameters),
            "responders": self.responders.to_dict(),
            "relief_by_diagnosis": self.relief_by_diagnosis.to_dict(),
            "relief_by_protocol": self.relief_by_protocol.to_dict(),
            "pain_change_by_diagnosis": {
                k: v.to_dict() for k, v in self.pain_change_by_diagnosis.items()
            },
            "adverse_events": self.adverse_events.to_dict(),
            "opioids": self.opioids.to_dict(),
        }


def outcome_report(
    series: Sequence[SeriesOutcome],
    *,
    loss_percent: Number,
    thresholds: ResponderThresholds | None = None,
    confidence: float = 0.95,
) -> OutcomeReport:
    """The full outcome summary. Relief starts at the lowest responder threshold and is
    lost below ``loss_percent`` (the protocol's loss-of-response rule)."""
    th = thresholds or default_responder_thresholds()
    response = min(th.percents)
    relief = {
        by: relief_survival(
            series,
            response_percent=response,
            loss_percent=loss_percent,
            by=by,
            confidence=confidence,
        )
        for by in ("diagnosis_group", "protocol")
    }
    return OutcomeReport(
        n_series=len(series),
        n_patients=len({s.patient_id for s in series}),
        responders=responder_rates(series, thresholds=th, confidence=confidence),
        relief_by_diagnosis=relief["diagnosis_group"],
        relief_by_protocol=relief["protocol"],
        pain_change_by_diagnosis=mean_pain_change(series, confidence=confidence),
        adverse_events=adverse_event_rate(series),
        opioids=opioid_change(series, confidence),
        parameters={
            "thresholds": th.to_dict(),
            "loss_percent": float(units.exact(loss_percent, field="loss_percent")),
            "confidence": confidence,
        },
    )
