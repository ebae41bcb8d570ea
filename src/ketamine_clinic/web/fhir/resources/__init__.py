"""Mapping the app's records to FHIR R4 resources (``fhir.resources`` R4B models).

Each ``*_resource`` function takes rows already read (and, for sessions, a
:class:`~ketamine_clinic.web.fhir.chart.Chart`) and returns the resource as a plain dict;
:func:`validated` turns it into the R4B model, which is what leaves the server: nothing
is served or exported that the model refuses. Codes, systems, units and profiles come from
``reference/fhir.toml`` through :mod:`terminology` (``T``). Times carry the site's offset.
"""

from ketamine_clinic.web.fhir.resources.common import (
    instant,
    meta,
    practitioner_ref,
    ref,
    serve,
    to_json,
    validated,
    zone,
)
from ketamine_clinic.web.fhir.resources.documents import (
    consent_resource,
    questionnaire_resource,
    questionnaire_response_resource,
    questionnaire_url,
)
from ketamine_clinic.web.fhir.resources.orders import (
    EXPORTED_ORDER_STATUSES,
    medication_request_resource,
    order_dosage_text,
    order_drug,
    order_line_id,
    order_line_resource,
    order_resources,
)
from ketamine_clinic.web.fhir.resources.people import (
    group_resource,
    organization_resource,
    patient_resource,
    practitioner_resource,
)
from ketamine_clinic.web.fhir.resources.provenance import (
    audit_event_resource,
    provenance_resource,
)
from ketamine_clinic.web.fhir.resources.records import (
    allergy_resource,
    chart_observations,
    condition_resource,
    measurement_observation,
    score_observation,
    vitals_observations,
)
from ketamine_clinic.web.fhir.resources.sessions import (
    chart_administrations,
    encounter_resource,
    given_administration,
    procedure_resource,
    segment_administration,
)

__all__ = [
    "EXPORTED_ORDER_STATUSES",
    "allergy_resource",
    "audit_event_resource",
    "chart_administrations",
    "chart_observations",
    "condition_resource",
    "consent_resource",
    "encounter_resource",
    "given_administration",
    "group_resource",
    "instant",
    "measurement_observation",
    "medication_request_resource",
    "meta",
    "order_dosage_text",
    "order_drug",
    "order_line_id",
    "order_line_resource",
    "order_resources",
    "organization_resource",
    "patient_resource",
    "practitioner_ref",
    "practitioner_resource",
    "procedure_resource",
    "provenance_resource",
    "questionnaire_resource",
    "questionnaire_response_resource",
    "questionnaire_url",
    "ref",
    "score_observation",
    "segment_administration",
    "serve",
    "to_json",
    "validated",
    "vitals_observations",
    "zone",
]
