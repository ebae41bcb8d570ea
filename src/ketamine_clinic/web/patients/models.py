"""The patient registry. Clinical facts are appended; corrections are amendments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse

from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.lib.models import ClinicModel


class SexAtBirth(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    INTERSEX = "intersex", "Intersex"
    UNKNOWN = "unknown", "Unknown"


class Patient(ClinicModel):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=32)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex_at_birth = models.CharField(max_length=10, choices=SexAtBirth.choices)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address = models.CharField(max_length=300, blank=True)
    escort_name = models.CharField("emergency contact / escort", max_length=200, blank=True)
    escort_phone = models.CharField(max_length=40, blank=True)
    escort_relationship = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    # Fields a correction may change; every change is kept in DemographicAmendment.
    AMENDABLE_FIELDS = (
        "mrn", "given_name", "family_name", "date_of_birth", "sex_at_birth", "phone",
        "email", "address", "escort_name", "escort_phone", "escort_relationship",
    )

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "mrn"], name="unique_mrn_per_site"),
        ]
        indexes = [
            models.Index(fields=["family_name", "given_name"]),
            models.Index(fields=["date_of_birth"]),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    def get_absolute_url(self) -> str:
        return reverse("patient_detail", kwargs={"patient_id": self.pk})

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: date) -> int:
        years = day.year - self.date_of_birth.year
        if (day.month, day.day) < (self.date_of_birth.month, self.date_of_birth.day):
            years -= 1
        return years


class DemographicAmendment(ClinicModel):
    """A corrected demographic field: the old value stays visible with who, when and why."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="amendments")
    field = models.CharField(max_length=40)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    reason = models.TextField()
    amended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    amended_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-amended_at", "-id"]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value!r} -> {self.new_value!r}"


class Retractable(ClinicModel):
    """A record that is never deleted: entered in error is marked, with who and why."""

    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    entered_in_error_at = models.DateTimeField(null=True, blank=True)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    entered_in_error_reason = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def in_error(self) -> bool:
        return self.entered_in_error_at is not None


class Diagnosis(Retractable):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="diagnoses")
    system = models.CharField(max_length=10, choices=[("icd10cm", "ICD-10-CM"),
                                                      ("snomed", "SNOMED CT")])
    code = models.CharField(max_length=20)
    display = models.CharField(max_length=200)
    group = models.CharField(max_length=10)
    laterality = models.CharField(max_length=12, blank=True)
    limb = models.CharField(max_length=10, blank=True)
    diagnosed_on = models.DateField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-diagnosed_on", "-id"]
        verbose_name_plural = "diagnoses"

    def __str__(self) -> str:
        return f"{self.code} {self.display}"


class MeasurementKind(models.TextChoices):
    WEIGHT_KG = "weight_kg", "Weight (kg)"
    HEIGHT_CM = "height_cm", "Height (cm)"
    PREGNANCY_STATUS = "pregnancy_status", "Pregnancy status"
    ECG = "ecg", "ECG"
    LIVER_FUNCTION_TESTS = "liver_function_tests", "Liver function tests"


# The kinds recorded as a test result (value_code one of TestOutcome), not a number.
TEST_KINDS = ("ecg", "liver_function_tests")


class TestOutcome(models.TextChoices):
    """The reviewed result of a test the screening asked for."""

    __test__ = False  # not a pytest test class

    IN_RANGE = "in_range", "In range"
    OUT_OF_RANGE = "out_of_range", "Out of range"


class PregnancyStatus(models.TextChoices):
    PREGNANT = "pregnant", "Pregnant"
    NOT_PREGNANT = "not_pregnant", "Not pregnant"
    UNKNOWN = "unknown", "Unknown"


class Measurement(Retractable):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="measurements")
    kind = models.CharField(max_length=20, choices=MeasurementKind.choices)
    value_number = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    value_code = models.CharField(max_length=20, blank=True)
    measured_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-measured_at", "-id"]
        indexes = [models.Index(fields=["patient", "kind", "-measured_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_value}"

    @property
    def display_value(self) -> str:
        if self.kind == MeasurementKind.PREGNANCY_STATUS:
            return PregnancyStatus(self.value_code).label
        if self.kind in TEST_KINDS:
            return TestOutcome(self.value_code).label
        unit = "kg" if self.kind == MeasurementKind.WEIGHT_KG else "cm"
        return f"{self.number.normalize():f} {unit}"

    @property
    def number(self) -> Decimal:
        """The value of a kind recorded as a number (weight, height); the coded kinds
        (pregnancy status, test results) have none."""
        if self.value_number is None:
            raise ValueError(f"a {self.kind} measurement is recorded as a code, not a number")
        return self.value_number


class Allergy(Retractable):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(max_length=120)
    reaction = models.CharField(max_length=200, blank=True)
    severity = models.CharField(
        max_length=10, choices=[("mild", "Mild"), ("moderate", "Moderate"), ("severe", "Severe")],
        blank=True,
    )

    class Meta:
        ordering = ["substance"]
        verbose_name_plural = "allergies"

    def __str__(self) -> str:
        return self.substance


class Medication(Retractable):
    """A current or past medication the patient takes (a medication statement)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(max_length=120, help_text="generic name")
    dose = models.CharField(max_length=60, blank=True, help_text="e.g. 300 mg three times daily")
    route = models.CharField(max_length=30, blank=True)
    start_date = models.DateField(null=True, blank=True)
    stopped_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} {self.dose}".strip()


# The patient's records that can be marked as entered in error.
PatientRecord = Measurement | Diagnosis | Allergy | Medication
