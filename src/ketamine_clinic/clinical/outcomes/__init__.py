"""Outcome statistics of infusion series.

Inputs are plain records (:class:`SeriesOutcome`, one per treatment series) that the web
layer builds from the database; every function returns a result with ``to_dict()`` that
carries its inputs' summary and the thresholds used.

Modules
-------
:mod:`.measures` (thresholds, percent reduction, immediate response, proportions),
:mod:`.records` (a series and its follow-ups), :mod:`.statistics` (responders, relief
duration, Kaplan–Meier, means, safety, opioids), :mod:`.report` (the report in one pass),
:mod:`.arrays` (the same report over a cohort as NumPy arrays). Callers import from this
package.

Definitions
-----------
* Pain is the 0–10 NRS. The **series baseline** is the pain before the first infusion of
  the series. Follow-up times are **days after the end of the series** (the end of its
  last infusion); day 0 is the score at the end of that infusion.
* **Percent reduction** = (baseline − pain) / baseline × 100, exactly (Fractions); a
  baseline of 0 has no percent reduction and is left out (counted as excluded).
* A **responder** at threshold *p* has a percent reduction ≥ *p* (IMMPACT: 30% moderately
  important, 50% substantial [Dworkin2008], defaults in ``reference/outcomes.toml``).
* **Duration of relief**: a series whose first assessment reaches the response threshold
  has relief; relief is lost at the first later follow-up whose reduction falls below the
  loss-of-response threshold (an event at that follow-up's day: pain is only known at
  visits, so the loss is dated to the visit that found it). A series still in relief at
  its last contact is censored there (drop-outs are censored where they dropped out).
  Series without relief are not part of the duration analysis; they are counted.
* Kaplan–Meier estimates come from ``scipy.stats.ecdf`` on right-censored data (Greenwood
  variance, log(−log) confidence band; a test checks them against lifelines); the median
  and its confidence interval are read from the curve and its band. A median that is not
  reached is reported as None.
"""

from ketamine_clinic.clinical.outcomes.arrays import (
    CohortArrays,
    outcome_report_arrays,
)
from ketamine_clinic.clinical.outcomes.measures import (
    ImmediateResponse,
    Proportion,
    ResponderThresholds,
    default_responder_thresholds,
    immediate_response,
    percent_reduction,
    proportion,
    responder_thresholds,
)
from ketamine_clinic.clinical.outcomes.records import (
    FollowUp,
    Grouping,
    SeriesOutcome,
)
from ketamine_clinic.clinical.outcomes.report import (
    OutcomeReport,
    outcome_report,
)
from ketamine_clinic.clinical.outcomes.statistics import (
    AdverseEventRate,
    KaplanMeier,
    KMRow,
    MeanChange,
    OpioidChange,
    ReliefDuration,
    ReliefSurvival,
    ResponderRates,
    adverse_event_rate,
    kaplan_meier,
    mean_pain_change,
    mean_with_ci,
    opioid_change,
    relief_duration,
    relief_survival,
    responder_rates,
)

__all__ = [
    "AdverseEventRate",
    "CohortArrays",
    "FollowUp",
    "Grouping",
    "ImmediateResponse",
    "KMRow",
    "KaplanMeier",
    "MeanChange",
    "OpioidChange",
    "OutcomeReport",
    "Proportion",
    "ReliefDuration",
    "ReliefSurvival",
    "ResponderRates",
    "ResponderThresholds",
    "SeriesOutcome",
    "adverse_event_rate",
    "default_responder_thresholds",
    "immediate_response",
    "kaplan_meier",
    "mean_pain_change",
    "mean_with_ci",
    "opioid_change",
    "outcome_report",
    "outcome_report_arrays",
    "percent_reduction",
    "proportion",
    "relief_duration",
    "relief_survival",
    "responder_rates",
    "responder_thresholds",
]
