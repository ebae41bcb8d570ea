"""Issue 13, finding 9: the writes that send no ``pre_save`` (``bulk_create``,
``bulk_update``, ``QuerySet.update()``, through a model's manager or a related manager) are
checked against their columns as a save is (``web/lib/columns.py``): a NUL character or a
string longer than its column is refused with the field named, on SQLite (which would
store it) as on PostgreSQL (which would answer with a database error), and nothing is
written."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.apps import apps
from django.db.models import F, Value
from django.db.models.functions import Concat

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.lib.columns import CheckedQuerySet
from ketamine_clinic.web.patients.models import Patient

pytestmark = pytest.mark.django_db

TOO_LONG = "x" * 201  # Site.name holds 200


def _patient(cast: Any, **change: Any) -> Patient:
    fields = {"site": cast.denver, "mrn": "DEN-9", "given_name": "Iris", "family_name": "Vega",
              "date_of_birth": date(1980, 1, 2), "sex_at_birth": "female",
              "created_by": cast.carol, **change}
    return Patient(**fields)


def test_every_clinic_model_writes_through_the_checked_query_set() -> None:
    models = [m for m in apps.get_models() if m.__module__.startswith("ketamine_clinic.")]
    assert len(models) > 40
    unchecked = [m.__name__ for m in models
                 if not isinstance(m._default_manager.all(), CheckedQuerySet)]
    assert unchecked == []


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"family_name": "Ve\x00ga"}, "family_name", "NUL character"),
    ({"given_name": "I" * 101}, "given_name", "longer than 100 characters (101 given)"),
])
def test_bulk_create_is_refused_naming_the_field_and_writes_nothing(
        cast: Any, change: dict[str, str], field: str, problem: str) -> None:
    before = Patient.objects.count()
    with pytest.raises(UsageError) as refused:
        Patient.objects.bulk_create([_patient(cast, mrn="DEN-8"), _patient(cast, **change)])
    assert refused.value.field == field
    assert problem in str(refused.value)
    assert Patient.objects.count() == before  # not even the good first row


def test_a_valid_bulk_create_is_stored(cast: Any) -> None:
    Patient.objects.bulk_create([_patient(cast, given_name="I" * 100)])
    assert Patient.objects.filter(given_name="I" * 100).count() == 1


@pytest.mark.parametrize(("values", "field"), [
    ({"name": "Den\x00ver"}, "name"),
    ({"name": TOO_LONG}, "name"),
    ({"code": "d" * 33}, "code"),
])
def test_update_is_refused_naming_the_field_and_changes_nothing(
        cast: Any, values: dict[str, str], field: str) -> None:
    with pytest.raises(UsageError) as refused:
        Site.objects.filter(pk=cast.denver.pk).update(**values)
    assert refused.value.field == field
    cast.denver.refresh_from_db()
    assert (cast.denver.code, cast.denver.name) == ("denver", "Denver")


def test_update_through_a_related_manager_and_on_staff_is_checked(cast: Any) -> None:
    with pytest.raises(UsageError) as refused:
        cast.denver.patients.update(escort_name="E" * 201)
    assert refused.value.field == "escort_name"
    assert not Patient.objects.filter(escort_name="E" * 201).exists()
    with pytest.raises(UsageError) as refused:
        User.objects.filter(pk=cast.bob.pk).update(title="RN\x00")
    assert refused.value.field == "title"
    cast.bob.refresh_from_db()
    assert "\x00" not in cast.bob.title


def test_bulk_update_is_checked(cast: Any) -> None:
    sites = list(Site.objects.order_by("code"))
    sites[0].name = TOO_LONG
    with pytest.raises(UsageError) as refused:
        Site.objects.bulk_update(sites, ["name"])
    assert refused.value.field == "name"
    assert not Site.objects.filter(name=TOO_LONG).exists()


def test_valid_updates_and_expressions_go_through(cast: Any) -> None:
    assert Site.objects.filter(pk=cast.denver.pk).update(name="Denver Central") == 1
    Site.objects.filter(pk=cast.boulder.pk).update(name=Concat(F("name"), Value(" North")))
    names = set(Site.objects.values_list("name", flat=True))
    assert names == {"Denver Central", "Boulder North"}


@pytest.mark.parametrize("model", [m for m in apps.get_models()
                                   if m.__module__.startswith("ketamine_clinic.")])
def test_each_clinic_model_manager_is_checked_and_deconstructs(model: Any) -> None:
    """Every model's default manager hands out the checked query set, and names a class that
    can be imported from where it says (migrations and model states deconstruct managers)."""
    manager = model._default_manager
    assert isinstance(manager.all(), CheckedQuerySet), model
    _, path, *_ = manager.deconstruct()
    module, _, name = path.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is type(manager)
