"""Provenance of an exported resource, and the audit trail as AuditEvents.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.resources.common import _with, instant, meta, ref, zone

if TYPE_CHECKING:
    pass

Json = dict[str, Any]


# --------------------------------------------------------------------------- provenance, audit


def provenance_resource(target: Json, *, site: Any, recorded: datetime,
                        author_id: int | None, verifier_id: int | None = None,
                        author_is_patient: bool = False) -> Json:
    """Who authored ``target`` (and who verified it), on behalf of the site."""
    tz = zone(site)
    sec = T.section("provenance")
    rtype, rid = target["resourceType"], target["id"]
    agents = []
    if author_is_patient:
        subject = target.get("subject") or target.get("patient")
        agents.append({"type": T.concept(sec["author"]), "who": subject})
    elif author_id is not None:
        agents.append({"type": T.concept(sec["author"]), "who": ref("Practitioner", author_id),
                       "onBehalfOf": ref("Organization", site.pk)})
    if verifier_id is not None:
        agents.append({"type": T.concept(sec["verifier"]),
                       "who": ref("Practitioner", verifier_id),
                       "onBehalfOf": ref("Organization", site.pk)})
    agents.append({"type": T.concept(sec["transmitter"]),
                   "who": ref("Organization", site.pk)})
    return {
        "resourceType": "Provenance", "id": f"{rtype}-{rid}",
        "meta": meta(recorded, tz, sec["profile"]),
        "target": [ref(rtype, rid)],
        "recorded": instant(recorded, tz),
        "agent": agents,
    }


AUDIT_ACTIONS = {"view": "R", "read": "R", "search": "E", "list": "E", "browse": "E",
                 "export": "E", "download": "R", "print": "R"}
OBJECT_TYPES = {"patient": "Patient", "session": "Encounter", "order": "MedicationRequest",
                "consent": "Consent", "diagnosis": "Condition", "allergy": "AllergyIntolerance"}


def audit_event_resource(entry: Any) -> Json:
    """One entry of the keyed, hash-chained audit trail (IHE Basic Audit Log Patterns shape)."""
    tz = ZoneInfo("UTC")
    sec = T.section("audit_event")
    verb = entry.action.rsplit(".", 1)[-1]
    denied = "denied" in verb
    if entry.action.startswith(("login", "logout", "auth")):
        event_type = sec["login_type"]
    elif verb in ("search", "list", "browse"):
        event_type = sec["query_type"]
    elif "export" in entry.action:
        event_type = sec["export_type"]
    else:
        event_type = sec["rest_type"]
    agent: Json = {"requestor": True, "type": {"text": entry.role or "system"}}
    if entry.user_id_value is not None:
        agent["who"] = ref("Practitioner", entry.user_id_value, entry.username)
    else:
        agent["who"] = {"display": entry.username or "system"}
    if entry.client_address:
        agent["network"] = {"address": entry.client_address, "type": "2"}
    entities: list[Json] = []
    if entry.object_type:
        what: Json
        if entry.object_type in OBJECT_TYPES and entry.object_id.isdigit():
            what = ref(OBJECT_TYPES[entry.object_type], entry.object_id)
        else:
            what = {"identifier": {"system": T.system("local_site").replace("site", "object"),
                                   "value": f"{entry.object_type}/{entry.object_id}"}}
        entities.append({"what": what, "type": {"code": entry.object_type},
                         "detail": [{"type": "chain", "valueString":
                                     f"entry {entry.pk} {entry.mac}"}]})
    return _with({
        "resourceType": "AuditEvent", "id": str(entry.pk),
        "meta": meta(entry.at, tz, sec["profile"]),
        "type": T.coding(event_type),
        "subtype": [{"code": entry.action, "display": entry.action}],
        "action": "E" if denied else AUDIT_ACTIONS.get(verb, "E"),
        "recorded": instant(entry.at, tz),
        "outcome": "4" if denied else "0",
        "agent": [agent],
        "source": {"site": entry.site_code or None,
                   "observer": {"display": "ketamine-clinic"},
                   "type": [T.coding(sec["source_type"])]},
    }, entity=entities)
