"""Demo content of the documents area: consents of the demo patients.

Called at the end of ``web.demo.load_demo_data`` (inside its transaction). Every consent
goes through ``services.consent_record``, so it is audited like a real one.
"""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta

from django.utils import timezone

from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents import services
from ketamine_clinic.web.documents.consent import consent_for
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped

DEMO_PROTOCOL = "clinic-standard"
PAD_WIDTH, PAD_HEIGHT = 600, 200


def demo_signature(rng: random.Random) -> str:
    """A made-up scribble in the pad's coordinates: a wavy stroke and an underline."""
    strokes = []
    x0, y0 = rng.uniform(40, 90), rng.uniform(90, 120)
    amplitude, period = rng.uniform(18, 35), rng.uniform(25, 45)
    strokes.append([[round(x0 + 4 * i, 1),
                     round(y0 + amplitude * math.sin(i * 4 / period * math.pi)
                           - i * 0.15, 1)] for i in range(90)])
    strokes.append([[round(x0 + 10 + 5 * i, 1), round(y0 + 55 + rng.uniform(-1, 1), 1)]
                    for i in range(60)])
    return json.dumps(strokes)


def demo_consents(seed: int = 2026) -> int:
    """Record consents for the adult demo patients aged under 65 (the clinic's exclusion)."""
    protocol_sync_shipped()
    pv = protocol_current(DEMO_PROTOCOL)
    text_sha = consent_for(pv).sha256
    rng = random.Random(seed)
    today = timezone.localdate()
    count = 0
    for patient in Patient.objects.select_related("site").order_by("id"):
        if not 18 <= patient.age_on(today) < 65:
            continue
        nurse = (User.objects.filter(role="nurse", sites=patient.site, is_active=True)
                 .order_by("id").first())
        if nurse is None:
            continue
        paper = count % 3 == 2
        services.consent_record(
            actor=Actor(user=nurse, client_address="demo"), patient=patient,
            protocol_version=pv, document_sha256=text_sha,
            method="paper" if paper else "signature", explained_by=nurse,
            signed_at=timezone.now() - timedelta(days=rng.randint(1, 20), minutes=count),
            signature_strokes="" if paper else demo_signature(rng),
            pad_width=PAD_WIDTH, pad_height=PAD_HEIGHT, paper_attested=paper,
            paper_reference=f"scanned consent {1000 + count}" if paper else "")
        count += 1
    return count
