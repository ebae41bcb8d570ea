"""What every resource mapping shares: the R4B validation, the bytes served, references,
the site's time zone and instants, meta, and coded statuses.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import msgspec

from ketamine_clinic.web.fhir import terminology as T

if TYPE_CHECKING:
    # The FHIR models load only when a resource is validated.
    from fhir.resources.R4B.resource import Resource

Json = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def validated(resource: Json) -> Resource:
    """The R4B model of ``resource``; raises pydantic's ValidationError if it is not valid."""
    from fhir.resources.R4B import get_fhir_model_class  # imported on first use: start-up

    cls = get_fhir_model_class(resource["resourceType"])
    return cast("Resource", cls.model_validate(resource))  # every resourceType is a Resource


def to_json(model: Resource) -> str:
    """The model's own serialisation (slow: used by the tests that compare with
    :func:`serve`)."""
    return model.model_dump_json()


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def serve(resource: Json) -> bytes:
    """``resource`` as JSON once the R4B model has accepted it.

    The model validates; the bytes are the same document encoded by msgspec, which is
    about fifty times faster than the model's serialiser and gives the same JSON for
    everything this module builds (``test_served_json_is_the_models_json`` checks every
    resource of a fully charted record).
    """
    validated(resource)
    return _ENCODER.encode(resource)


def ref(resource_type: str, rid: object, display: str = "") -> Json:
    out: Json = {"reference": f"{resource_type}/{rid}"}
    if display:
        out["display"] = display
    return out


def practitioner_ref(user_id: int | None) -> Json | None:
    return None if user_id is None else ref("Practitioner", user_id)


def zone(site: Any) -> ZoneInfo:
    return ZoneInfo(site.time_zone)


def instant(at: datetime, tz: tzinfo) -> str:
    """An instant with the site's offset, to the second (FHIR instants need seconds)."""
    text = at.astimezone(tz).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text  # as the model writes UTC


def meta(last_updated: datetime, tz: ZoneInfo, profile: str | None = None) -> Json:
    out: Json = {"lastUpdated": instant(last_updated, tz)}
    if profile:
        out["profile"] = [T.profile(profile)]
    return out


def _latest(*times: datetime | None) -> datetime:
    return max(t for t in times if t is not None)


def _with(d: Json, **kv: Any) -> Json:
    """``d`` with every key whose value is not None / empty."""
    for k, v in kv.items():
        if v not in (None, "", [], {}):
            d[k] = v
    return d


def _status_code(system_name: str, code: str) -> Json:
    return {"coding": [{"system": T.system(system_name), "code": code}]}
