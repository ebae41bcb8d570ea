"""People and places: the organization (a site), practitioners, a group, the patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.resources.common import _with, meta, ref, zone

if TYPE_CHECKING:
    pass

Json = dict[str, Any]


# --------------------------------------------------------------------------- people, places


def organization_resource(site: Any) -> Json:
    tz = zone(site)
    d: Json = {
        "resourceType": "Organization", "id": str(site.pk),
        "meta": meta(datetime.now(tz), tz, T.section("organization")["profile"]),
        "identifier": [{"system": T.system("local_site"), "value": site.code}],
        "active": True, "name": site.name,
    }
    if site.phone:
        d["telecom"] = [{"system": "phone", "value": site.phone, "use": "work"}]
    if site.address:
        d["address"] = [{"text": site.address}]
    return d


def practitioner_resource(user: Any) -> Json:
    tz = ZoneInfo("UTC")
    name: Json = {"family": user.last_name or user.username}
    if user.first_name:
        name["given"] = [user.first_name]
    if user.title:
        name["suffix"] = [user.title]
    return {
        "resourceType": "Practitioner", "id": str(user.pk),
        "meta": meta(user.date_joined, tz, T.section("practitioner")["profile"]),
        "identifier": [{"system": T.system("local_staff"), "value": user.username}],
        "active": bool(user.is_active), "name": [name],
    }


def group_resource(site: Any, patient_ids: Iterable[int]) -> Json:
    tz = zone(site)
    members = [{"entity": ref("Patient", pid)} for pid in patient_ids]
    return _with({
        "resourceType": "Group", "id": str(site.pk),
        "meta": meta(datetime.now(tz), tz),
        "identifier": [{"system": T.system("local_site"), "value": site.code}],
        "type": "person", "actual": True, "name": f"Patients of {site.name}",
        "managingEntity": ref("Organization", site.pk),
        "quantity": len(members),
    }, member=members)


def patient_resource(p: Any, *, last_updated: datetime | None = None) -> Json:
    tz = zone(p.site)
    sec = T.section("patient")
    d: Json = {
        "resourceType": "Patient", "id": str(p.pk),
        "meta": meta(last_updated or p.created_at, tz, sec["profile"]),
        "extension": [{"url": sec["birthsex_extension"],
                       "valueCode": sec["birthsex"][p.sex_at_birth]}],
        "identifier": [{"use": "usual", "type": T.concept(sec["mrn_type"]),
                        "system": T.system("local_mrn") + p.site.code, "value": p.mrn}],
        "active": True,
        "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
        "gender": sec["gender"][p.sex_at_birth],
        "birthDate": p.date_of_birth.isoformat(),
        "managingOrganization": ref("Organization", p.site_id),
    }
    telecom = []
    if p.phone:
        telecom.append({"system": "phone", "value": p.phone, "use": "home"})
    if p.email:
        telecom.append({"system": "email", "value": p.email})
    _with(d, telecom=telecom)
    if p.address:
        d["address"] = [{"text": p.address}]
    if p.escort_name:
        contact: Json = {"name": {"text": p.escort_name}}
        if p.escort_relationship:
            contact["relationship"] = [{"text": p.escort_relationship}]
        if p.escort_phone:
            contact["telecom"] = [{"system": "phone", "value": p.escort_phone}]
        d["contact"] = [contact]
    return d
