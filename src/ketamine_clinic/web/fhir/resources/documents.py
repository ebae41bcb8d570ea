"""Documents and answers: consent, the follow-up questionnaire and its responses.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.resources.common import _latest, instant, meta, ref, zone

if TYPE_CHECKING:
    pass

Json = dict[str, Any]


# --------------------------------------------------------------------------- documents, answers


def consent_resource(consent: Any, site: Any, document: Any | None) -> Json:
    tz = zone(site)
    sec = T.section("consent")
    withdrawal = getattr(consent, "withdrawal", None)
    provision: Json = {"type": "permit", "period": {"start": instant(consent.signed_at, tz)}}
    if withdrawal is not None:
        provision["period"]["end"] = instant(withdrawal.withdrawn_at, tz)
    pv = consent.protocol_version
    d: Json = {
        "resourceType": "Consent", "id": str(consent.pk),
        "meta": meta(_latest(consent.recorded_at,
                             withdrawal.recorded_at if withdrawal else None), tz),
        "status": "inactive" if withdrawal is not None else "active",
        "scope": T.concept(sec["scope"]),
        "category": [T.concept(sec["category"])],
        "patient": ref("Patient", consent.patient_id),
        "dateTime": instant(consent.signed_at, tz),
        "performer": [ref("Patient", consent.patient_id)],
        "organization": [ref("Organization", site.pk)],
        "policyRule": T.concept(sec["policy_rule"]),
        "provision": provision,
    }
    if document is not None:
        raw = document.text.encode()
        d["sourceAttachment"] = {
            "contentType": "text/markdown; charset=utf-8", "language": "en",
            "data": base64.b64encode(raw).decode(),
            "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode(),
            "size": len(raw), "title": document.title,
            "creation": instant(consent.signed_at, tz),
        }
    else:
        where = f": {consent.paper_reference}" if consent.paper_reference else ""
        d["sourceAttachment"] = {"title": f"Consent for {pv.name} v{pv.version} "
                                          f"({consent.get_method_display().lower()}{where})"}
    return d


FOLLOW_UP_QUESTIONNAIRE = "follow-up"
QUESTIONS = (
    ("pain_average_nrs", "Average pain over the past week (0-10)", "integer"),
    ("pain_worst_nrs", "Worst pain over the past week (0-10)", "integer"),
    ("global_impression", "Patient global impression of change", "integer"),
    ("opioid_mme_per_day", "Opioid use (morphine milligram equivalents per day)", "decimal"),
)


def questionnaire_url() -> str:
    return T.system("local_questionnaire") + FOLLOW_UP_QUESTIONNAIRE


def questionnaire_resource() -> Json:
    tz = ZoneInfo("UTC")
    return {
        "resourceType": "Questionnaire", "id": FOLLOW_UP_QUESTIONNAIRE,
        "meta": meta(datetime.fromisoformat(T.section("fhir")["questionnaire_date"]), tz),
        "url": questionnaire_url(), "name": "FollowUp", "title": "Follow-up after infusions",
        "status": "active", "subjectType": ["Patient"],
        "item": [{"linkId": key, "text": text, "type": kind} for key, text, kind in QUESTIONS],
    }


def questionnaire_response_resource(r: Any, follow_up: Any, site: Any) -> Json:
    tz = zone(site)
    items = []
    for key, text, kind in QUESTIONS:
        value = getattr(r, key)
        if value is None:
            continue
        answer = ({"valueInteger": int(value)} if kind == "integer"
                  else {"valueDecimal": T.number(Decimal(value))})
        items.append({"linkId": key, "text": text, "answer": [answer]})
    author = (ref("Patient", follow_up.patient_id) if r.via_patient_link or r.entered_by_id is None
              else ref("Practitioner", r.entered_by_id))
    d: Json = {
        "resourceType": "QuestionnaireResponse", "id": str(r.pk),
        "meta": meta(r.recorded_at, tz, T.section("questionnaire_response")["profile"]),
        "identifier": {"system": T.system("local_questionnaire") + "response",
                       "value": str(r.pk)},
        "questionnaire": questionnaire_url(),
        "status": "amended" if r.corrects_id else "completed",
        "subject": ref("Patient", follow_up.patient_id),
        "authored": instant(r.answered_at, tz),
        "author": author,
        "item": items,
    }
    if follow_up.session_id:
        d["encounter"] = ref("Encounter", follow_up.session_id)
    return d
