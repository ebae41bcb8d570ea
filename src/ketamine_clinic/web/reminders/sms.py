"""Text-message backends, chosen by ``KETAMINE_CLINIC_SMS_BACKEND`` (a dotted path), as
Django chooses its mail backend. A provider's backend (Twilio, Vonage, AWS SNS...) is a
class with ``send(to, body, idempotency_key) -> provider reference``; it should pass the
key on to the provider so that a repeated send is dropped there too."""

from __future__ import annotations

import sys
from typing import ClassVar

from django.conf import settings
from django.utils.module_loading import import_string


class SmsBackend:
    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        raise NotImplementedError


class ConsoleSmsBackend(SmsBackend):
    """Prints the message (the default, like Django's console mail backend)."""

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        sys.stdout.write(f"SMS to {to} [{idempotency_key}]\n{body}\n{'-' * 40}\n")
        sys.stdout.flush()
        return f"console:{idempotency_key}"


class LocmemSmsBackend(SmsBackend):
    """Keeps messages in ``outbox`` (tests), dropping a repeated key as a provider does."""

    outbox: ClassVar[list[dict[str, str]]] = []

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        if not any(m["key"] == idempotency_key for m in self.outbox):
            self.outbox.append({"to": to, "body": body, "key": idempotency_key})
        return f"locmem:{idempotency_key}"


def sms_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()
