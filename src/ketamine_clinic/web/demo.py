"""Fictional demo data: two sites, their staff and about twenty patients.

Everything goes through the services, so the demo's records carry audit entries like
real ones. Every name here is invented.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents.demo import demo_consents
from ketamine_clinic.web.patients import services
from ketamine_clinic.web.patients.models import Patient

DEMO_PASSWORD = "demo-ketamine-2026"

SITES = [
    ("denver", "Front Range Pain Clinic — Denver", "1200 Fictional Ave, Denver CO", "303-555-0100"),
    ("boulder", "Front Range Pain Clinic — Boulder", "45 Imaginary St, Boulder CO", "303-555-0200"),
]

STAFF = [
    # username, first, last, title, role, sites
    ("dr.alvarez", "Maria", "Alvarez", "MD", Role.PHYSICIAN, ["denver", "boulder"]),
    ("dr.grant", "Samuel", "Grant", "MD", Role.PHYSICIAN, ["boulder"]),
    ("nurse.brooks", "Hannah", "Brooks", "RN", Role.NURSE, ["denver"]),
    ("nurse.chen", "Wei", "Chen", "RN", Role.NURSE, ["boulder"]),
    ("desk.diaz", "Lucia", "Diaz", "", Role.FRONT_DESK, ["denver"]),
    ("admin.evans", "Paul", "Evans", "", Role.CLINIC_ADMIN, ["denver", "boulder"]),
    ("audit.fox", "Grace", "Fox", "", Role.AUDITOR, ["denver", "boulder"]),
]

GIVEN = ["Ana", "Ben", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonah",
         "Keiko", "Liam", "Mona", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
         "Umar", "Vera"]
FAMILY = ["Ruiz", "Okafor", "Lindqvist", "Petrov", "Moreau", "Haddad", "Novak", "Brandt",
          "Sato", "Kowalski", "Ferreira", "Nakamura", "Oyelaran", "Dubois", "Castillo",
          "Jensen", "Abbott", "Varga", "Ilunga", "MacLeod", "Rahman", "Sorensen"]

DIAGNOSES = [  # (system, code) with weights toward CRPS, the clinic's main indication
    ("icd10cm", "G90.512"), ("icd10cm", "G90.511"), ("icd10cm", "G90.521"),
    ("icd10cm", "G90.522"), ("icd10cm", "G90.523"), ("icd10cm", "G90.50"),
    ("icd10cm", "G56.41"), ("icd10cm", "G57.72"), ("icd10cm", "M79.7"),
    ("icd10cm", "G54.6"), ("icd10cm", "B02.29"), ("icd10cm", "G89.4"),
]

MEDICATIONS = [
    ("gabapentin", "300 mg three times daily", "oral"),
    ("pregabalin", "75 mg twice daily", "oral"),
    ("duloxetine", "60 mg daily", "oral"),
    ("amitriptyline", "25 mg at night", "oral"),
    ("naproxen", "500 mg twice daily", "oral"),
    ("tramadol", "50 mg up to four times daily", "oral"),
    ("oxycodone", "5 mg every 6 hours as needed", "oral"),
    ("baclofen", "10 mg three times daily", "oral"),
    ("lisinopril", "10 mg daily", "oral"),
    ("lorazepam", "0.5 mg as needed", "oral"),
    ("levothyroxine", "75 micrograms daily", "oral"),
    ("clarithromycin", "500 mg twice daily", "oral"),
]

ALLERGIES = [("penicillin", "rash", "moderate"), ("latex", "hives", "mild"),
             ("sulfonamides", "rash", "mild"), ("codeine", "nausea", "mild")]


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, role label, sites) for the README and the demo command's banner."""
    return [(u, Role(r).label, ", ".join(s)) for u, _f, _l, _t, r, s in STAFF]


@transaction.atomic
def load_demo_data(seed: int = 2026) -> bool:
    """Create the demo once. Returns False when the database already has sites."""
    if Site.objects.exists():
        return False
    rng = random.Random(seed)
    sites = {code: Site.objects.create(code=code, name=name, address=addr, phone=phone)
             for code, name, addr, phone in SITES}
    users = {}
    for username, first, last, title, role, site_codes in STAFF:
        user = User.objects.create_user(username=username, password=DEMO_PASSWORD,
                                        first_name=first, last_name=last, title=title,
                                        role=role)
        user.sites.set([sites[c] for c in site_codes])
        users[username] = user
    registrar = Actor(user=users["desk.diaz"], client_address="demo")
    physician = Actor(user=users["dr.alvarez"], client_address="demo")
    nurse = Actor(user=users["nurse.brooks"], client_address="demo")
    today = timezone.localdate()
    for i in range(20):
        site = sites["denver"] if i % 3 else sites["boulder"]
        sex = "female" if rng.random() < 0.7 else "male"  # CRPS is commoner in women
        age = rng.randint(19, 78) if i != 7 else 17  # one teenager, for the exclusion rules
        dob = today - timedelta(days=int(age * 365.25) + rng.randint(0, 300))
        patient = services.patient_register(
            actor=registrar, site=site, mrn=f"{site.code[:3].upper()}-{1001 + i}",
            given_name=GIVEN[i], family_name=FAMILY[i], date_of_birth=dob, sex_at_birth=sex,
            phone=f"303-555-{1100 + i:04d}", email=f"{GIVEN[i].lower()}@example.org",
            address=f"{10 + i} Example Rd, Colorado",
            escort_name=f"{rng.choice(GIVEN)} {FAMILY[i]}",
            escort_phone=f"303-555-{2100 + i:04d}",
            escort_relationship=rng.choice(["spouse", "parent", "sibling", "friend"]),
        )
        _demo_history(rng, patient, physician, nurse, today)

    demo_consents(seed)  # consents of the adult demo patients (documents area)
    return True


def _demo_history(rng: random.Random, patient: Patient, physician: Actor, nurse: Actor,
                  today: date) -> None:
    system, code = rng.choice(DIAGNOSES)
    onset = max(patient.date_of_birth + timedelta(days=365 * 12),
                today - timedelta(days=rng.randint(200, 2500)))
    services.diagnosis_record(actor=physician, patient=patient, system=system, code=code,
                              diagnosed_on=onset)
    if rng.random() < 0.3:
        services.diagnosis_record(actor=physician, patient=patient, system="icd10cm",
                                  code=rng.choice(["G89.4", "M79.7", "G89.29"]),
                                  diagnosed_on=onset + timedelta(days=rng.randint(10, 150)))
    weight = rng.uniform(52, 110)
    height = rng.uniform(152, 190)
    visits = rng.randint(1, 5)
    for v in range(visits):
        when = timezone.make_aware(datetime.combine(
            today - timedelta(days=40 * (visits - v) + rng.randint(0, 20)),
            time(hour=rng.randint(8, 16), minute=rng.choice([0, 15, 30, 45]))))
        weight += rng.uniform(-2.5, 2.0)
        services.measurement_record(actor=nurse, patient=patient, kind="weight_kg",
                                    value_number=round(weight, 1), measured_at=when)
        if v == 0:
            services.measurement_record(actor=nurse, patient=patient, kind="height_cm",
                                        value_number=round(height), measured_at=when)
        if patient.sex_at_birth == "female" and patient.age_on(today) < 55:
            services.measurement_record(actor=nurse, patient=patient, kind="pregnancy_status",
                                        value_code="not_pregnant", measured_at=when)
    if rng.random() < 0.2:  # a misread scale, caught and marked in error
        slip = services.measurement_record(
            actor=nurse, patient=patient, kind="weight_kg", value_number=round(weight + 8, 1),
            measured_at=timezone.now() - timedelta(days=2))
        services.record_mark_in_error(actor=nurse, record=slip,
                                      reason="Misread scale: re-weighed, see next entry")
        services.measurement_record(actor=nurse, patient=patient, kind="weight_kg",
                                    value_number=round(weight, 1),
                                    measured_at=timezone.now() - timedelta(days=2, minutes=-5))
    for name, dose, route in rng.sample(MEDICATIONS, rng.randint(1, 4)):
        services.medication_record(actor=physician, patient=patient, name=name, dose=dose,
                                   route=route,
                                   start_date=today - timedelta(days=rng.randint(30, 900)))
    if rng.random() < 0.35:
        substance, reaction, severity = rng.choice(ALLERGIES)
        services.allergy_record(actor=nurse, patient=patient, substance=substance,
                                reaction=reaction, severity=severity)
