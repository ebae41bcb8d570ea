"""Live infusion monitoring: exact dose, session limits, vital-sign alarms, overdue checks,
and the fold of timeline corrections into the effective record.

Units and arithmetic
--------------------
* Times are timezone-aware :class:`datetime.datetime`; durations are
  :class:`datetime.timedelta`, which holds whole microseconds, so every duration converts
  to an exact :class:`fractions.Fraction` of an hour (:func:`.units.h_from_timedelta`).
* Rates are ``rate_mg_per_h``, boluses ``dose_mg``, the bag ``concentration_mg_per_ml``,
  weights ``weight_kg``. They are held as :class:`~fractions.Fraction`; ints, Decimals and
  strings convert exactly, floats through their shortest repr (``0.1`` → 1/10), which is
  the number the person typed.
* The dose is the exact piecewise sum Σ rate × duration over the rate segments, plus
  boluses; no floating point is involved until a result is shown.

Modules
-------
:mod:`.infusion` (rate events, exact totals), :mod:`.session_limits` (dose given and
projected against the session limits), :mod:`.vitals` (vital signs, alarms, episodes,
overdue sets), :mod:`.corrections` (the fold of timeline corrections). Callers import from
this package.

Thresholds (alarm limits, monitoring interval, session limits) are parameters: they belong
to the protocol, not to this package.
"""

from ketamine_clinic.clinical.monitoring.corrections import (
    EntryStatus,
    FoldedEntry,
    TimelineEntry,
    effective_entries,
    effective_payloads,
    fold_corrections,
)
from ketamine_clinic.clinical.monitoring.infusion import (
    InfusionStatus,
    InfusionTotals,
    RateEvent,
    RateEventKind,
    RateSegment,
    infusion_totals,
)
from ketamine_clinic.clinical.monitoring.session_limits import (
    SESSION_LIMIT_QUANTITIES,
    LimitFinding,
    SessionLimitCheck,
    check_session_limits,
)
from ketamine_clinic.clinical.monitoring.vitals import (
    VITAL_NAMES,
    Alarm,
    AlarmEpisode,
    OverdueStatus,
    VitalSigns,
    VitalThreshold,
    alarm_episodes,
    vital_alarms,
    vitals_overdue,
)

__all__ = [
    "SESSION_LIMIT_QUANTITIES",
    "VITAL_NAMES",
    "Alarm",
    "AlarmEpisode",
    "EntryStatus",
    "FoldedEntry",
    "InfusionStatus",
    "InfusionTotals",
    "LimitFinding",
    "OverdueStatus",
    "RateEvent",
    "RateEventKind",
    "RateSegment",
    "SessionLimitCheck",
    "TimelineEntry",
    "VitalSigns",
    "VitalThreshold",
    "alarm_episodes",
    "check_session_limits",
    "effective_entries",
    "effective_payloads",
    "fold_corrections",
    "infusion_totals",
    "vital_alarms",
    "vitals_overdue",
]
