"""Monitor devices: an account that may write vital signs to its site's sessions only.

A device is a user row (so that what it charts names who recorded it) with no role, no
usable password and one site, plus this row; it authenticates only with ``device_vitals``
tokens, which only the device endpoint accepts (``web/staff/api.py``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.lib.models import ClinicModel


class Device(ClinicModel):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="device")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="devices")
    name = models.CharField(max_length=100, help_text='e.g. "chair 3 monitor"')
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        ordering = ["site", "name"]

    def __str__(self) -> str:
        return self.name
