"""Reminders and follow-up links sent through the real job worker: once per reminder even
when the job runs again, never for a cancelled or moved visit, never without consent, not
after STOP, not in quiet hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.reminders import services as reminders
from ketamine_clinic.web.reminders.models import Channel, Message
from ketamine_clinic.web.reminders.policy import policy
from ketamine_clinic.web.reminders.sms import LocmemSmsBackend
from ketamine_clinic.web.reminders.tasks import send_visit_reminder
from ketamine_clinic.web.scheduling import services
from ketamine_clinic.web.scheduling.checklist import checklist


def _when(sched: Any, key: str, visit_day_offset: int = 0) -> datetime:
    [r] = [r for r in policy().visit_reminders if r.key == key]
    return r.when(sched.day + timedelta(days=visit_day_offset), sched.tz)


def _consent(sched: Any, channel: str = Channel.EMAIL) -> None:
    reminders.contact_consent_record(actor=Actor(user=sched.cast.carol), patient=sched.bea,
                                     channel=channel, granted=True)


@pytest.fixture
def sms(settings: Any) -> list[dict[str, str]]:
    settings.SMS_BACKEND = "ketamine_clinic.web.reminders.sms.LocmemSmsBackend"
    settings.SMS_WEBHOOK_SECRET = "webhook-secret-for-tests"
    LocmemSmsBackend.outbox.clear()
    return LocmemSmsBackend.outbox


def test_booking_queues_each_reminder_and_the_worker_sends_it_once(
        sched: Any, run_jobs: Any, mailoutbox: list[Any]) -> None:
    _consent(sched)
    [visit] = sched.book(sched.bea_order, (1, sched.at(8), "1"))
    assert run_jobs() == 0  # nothing is due yet
    with time_machine.travel(_when(sched, "two_days") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
        assert len(mailoutbox) == 1
        mail = mailoutbox[0]
        assert mail.to == [sched.bea.email]
        assert checklist().items[0].reminder in mail.body
        assert "/reminders/stop/" in mail.body
        key = mail.extra_headers["Idempotency-Key"]
        # The job runs again (a worker killed before marking it done): nothing more is sent.
        send_visit_reminder.enqueue(visit.pk, "two_days", reminders.start_key(visit.starts_at))
        assert run_jobs() == 1
        assert len(mailoutbox) == 1
    assert Message.objects.get(idempotency_key=key).status == "sent"
    with time_machine.travel(_when(sched, "evening_before") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert len(mailoutbox) == 2


def test_a_cancelled_visit_gets_no_reminder(sched: Any, run_jobs: Any,
                                            mailoutbox: list[Any]) -> None:
    _consent(sched)
    [visit] = sched.book(sched.bea_order, (1, sched.at(8), "1"))
    services.visit_cancel(actor=sched.actor(), visit=visit, reason="patient_request")
    with time_machine.travel(_when(sched, "two_days") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert mailoutbox == []
    assert Message.objects.get(visit=visit).skip_reason == "the visit is cancelled"


def test_a_moved_visit_is_reminded_at_its_new_time_only(sched: Any, run_jobs: Any,
                                                        mailoutbox: list[Any]) -> None:
    _consent(sched)
    [visit] = sched.book(sched.bea_order, (1, sched.at(8), "1"))
    services.visit_reschedule(actor=sched.actor(), visit=visit, start=sched.at(8, days=1),
                              reason="patient asked")
    with time_machine.travel(_when(sched, "two_days") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1  # the old time's reminder: skipped
    assert mailoutbox == []
    with time_machine.travel(_when(sched, "two_days", 1) + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert len(mailoutbox) == 1
    assert "moved" in Message.objects.get(status="skipped").skip_reason


def test_without_consent_nothing_is_sent(sched: Any, run_jobs: Any,
                                         mailoutbox: list[Any]) -> None:
    sched.book(sched.bea_order, (1, sched.at(8), "1"))
    with time_machine.travel(_when(sched, "two_days") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert mailoutbox == []
    assert not Message.objects.filter(status="sent").exists()


def test_stop_by_text_is_honoured_at_once(sched: Any, run_jobs: Any, client: Client,
                                          sms: list[dict[str, str]]) -> None:
    sched.bea.phone = "+13035550199"
    sched.bea.save()
    _consent(sched, Channel.SMS)
    sched.book(sched.bea_order, (1, sched.at(8), "1"))
    with time_machine.travel(_when(sched, "two_days") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert len(sms) == 1
    assert "Reply STOP" in sms[0]["body"]
    refused = client.post(reverse("sms_inbound"), {"From": "+13035550199", "Body": "stop"})
    assert refused.status_code == 403  # no secret
    ok = client.post(reverse("sms_inbound"), {"From": "+13035550199", "Body": " Stop "},
                     HTTP_X_WEBHOOK_SECRET="webhook-secret-for-tests")
    assert ok.content == b"stopped 1"
    assert reminders.consent_in_force(sched.bea, Channel.SMS) is None
    with time_machine.travel(_when(sched, "evening_before") + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert len(sms) == 1


def test_the_stop_link_in_an_email_withdraws_email_consent(sched: Any,
                                                           client: Client) -> None:
    _consent(sched)
    url = reverse("email_stop", args=[reminders.email_stop_token(sched.bea)])
    assert client.get(url).status_code == 200
    assert reminders.consent_in_force(sched.bea, Channel.EMAIL) is not None
    client.post(url)
    assert reminders.consent_in_force(sched.bea, Channel.EMAIL) is None
    assert client.post(reverse("email_stop", args=["forged"])).status_code == 400


def test_a_late_job_waits_for_the_end_of_quiet_hours(sched: Any, run_jobs: Any,
                                                     mailoutbox: list[Any]) -> None:
    _consent(sched)
    sched.book(sched.bea_order, (1, sched.at(8), "1"))
    p = policy()
    quiet = datetime.combine(sched.day - timedelta(days=2), p.quiet_starts, sched.tz)
    with time_machine.travel(quiet + timedelta(minutes=30), tick=True):
        assert run_jobs() == 1  # ran, found quiet hours, queued itself for the morning
    assert mailoutbox == []
    morning = datetime.combine(sched.day - timedelta(days=1), p.quiet_ends, sched.tz)
    with time_machine.travel(morning + timedelta(minutes=1), tick=True):
        assert run_jobs() == 1
    assert len(mailoutbox) == 1


def test_a_follow_up_link_goes_out_once_when_due(sched: Any, run_jobs: Any,
                                                 mailoutbox: list[Any]) -> None:
    from ketamine_clinic.web.outcomes.models import FollowUp
    from ketamine_clinic.web.reminders.tasks import SWEEP_EVERY, followup_sweep_ensure

    _consent(sched)
    FollowUp.objects.create(patient=sched.bea, series=sched.bea_order.series, point="week1",
                            due_on=sched.day)
    send = datetime.combine(sched.day, policy().follow_up_send_at, sched.tz)
    with time_machine.travel(send + timedelta(minutes=5), tick=True):
        assert followup_sweep_ensure()
        assert not followup_sweep_ensure()  # one queued sweep at a time
        assert run_jobs() == 1
        assert len(mailoutbox) == 1
        assert "/q/" in mailoutbox[0].body
    with time_machine.travel(send + SWEEP_EVERY + timedelta(minutes=10), tick=True):
        assert run_jobs() == 1  # the next sweep: nothing new to send
    assert len(mailoutbox) == 1


def test_the_desk_records_contact_consent_on_the_patient_page(sched: Any,
                                                              client: Client) -> None:
    client.force_login(sched.cast.carol)
    response = client.post(reverse("contact_consent", args=[sched.bea.pk]),
                           {"channel": "email", "granted": "yes"})
    assert response.status_code == 302
    consent = reminders.consent_in_force(sched.bea, Channel.EMAIL)
    assert consent is not None
    assert consent.text_version == policy().consent_version
    html = client.get(reverse("patient_detail", args=[sched.bea.pk])).content.decode()
    assert 'id="reminders"' in html
    no_phone = client.post(reverse("contact_consent", args=[sched.bea.pk]),
                           {"channel": "sms", "granted": "yes"}, follow=True)
    assert "no phone number" in no_phone.content.decode()
