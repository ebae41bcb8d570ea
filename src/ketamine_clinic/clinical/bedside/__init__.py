"""The bedside core: a session's rules, its derived view and every decision at the chair.

* :func:`~.rules.session_rules` — what the bedside needs from one protocol version;
* :func:`~.view.evolve` — the session's state, dose, limits, baseline and scores, derived
  from its entries (the only derivation);
* :func:`~.decisions.decide` — one bedside command judged against the signed order, the
  protocol, the day's facts and the session so far: :class:`~.model.Accepted` or
  :class:`~.model.Refused` with sentences for the clinician;
* :func:`~.gates.start_gate_of`, :func:`~.gates.discharge_gate_of`, :func:`~.alarms.watch`.

Pure: nothing here reads a clock, a database or a request.
"""

from ketamine_clinic.clinical.bedside.decisions import decide
from ketamine_clinic.clinical.bedside.model import Accepted, Refused
from ketamine_clinic.clinical.bedside.rules import SessionRules, session_rules
from ketamine_clinic.clinical.bedside.view import SessionView, evolve

__all__ = ["Accepted", "Refused", "SessionRules", "SessionView", "decide", "evolve",
           "session_rules"]
