"""docs/fhir.md lists every resource, profile, search parameter and code system used."""

from __future__ import annotations

from pathlib import Path

from ketamine_clinic.web.fhir import search, sources
from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.capability import PATIENT_PARAM_TYPES, supported_profiles

DOC = (Path(__file__).parents[3] / "docs" / "fhir.md").read_text()


def test_the_doc_names_every_resource_type_and_its_search_parameters() -> None:
    rows = {line.split("|")[1].strip(): line for line in DOC.splitlines()
            if line.startswith("| ") and line.count("|") >= 3}
    for rtype in sources.ALL_TYPES:
        assert rtype in DOC, rtype
    for rtype, params in search.SEARCH.items():
        for name in params:
            assert f"`{name}`" in rows[rtype], (rtype, name)
    for name in PATIENT_PARAM_TYPES:
        assert f"`{name}`" in rows["Patient"], name


def test_the_doc_names_every_profile_and_code_system() -> None:
    for rtype in sources.ALL_TYPES:
        for url in supported_profiles(rtype):
            assert f"`{url.rsplit('/', 1)[1]}`" in DOC, url
    for name, uri in T.data()["systems"].items():
        assert name in DOC, name
        assert uri.rstrip(":") in DOC, uri
