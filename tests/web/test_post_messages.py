"""A refused form post tells the clinician in words what did not happen and why, the same way
on every page (``web/lib/forms.py``); nothing is recorded then."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import RequestFactory

from ketamine_clinic.errors import Refusal, UsageError
from ketamine_clinic.web.lib.forms import post_and_report, refusal_message, refusal_sentence


def test_a_usage_error_reads_as_a_sentence_with_its_field_in_words() -> None:
    assert refusal_sentence(UsageError("payload.systolic_bp_mmhg", "must be a whole number")) \
        == "Systolic bp mmhg: must be a whole number."
    assert refusal_sentence(UsageError("", "the DEA number is missing")) \
        == "The DEA number is missing."


def test_a_clinical_refusal_shows_its_own_sentences_without_a_field() -> None:
    exc = Refusal("rate", ["the rate is above the hard limit of 1 mg/kg/h",
                           "Ask the physician for a new order."])
    assert refusal_sentence(exc) == ("The rate is above the hard limit of 1 mg/kg/h. "
                                     "Ask the physician for a new order.")
    assert refusal_message("Not charted", exc).startswith("Not charted. The rate is above")


def _request() -> Any:
    from django.contrib.messages.storage.fallback import FallbackStorage

    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


@pytest.mark.parametrize("refuses", [False, True])
def test_post_and_report_leaves_one_message_and_says_whether_it_went_through(
    refuses: bool,
) -> None:
    request = _request()
    calls: list[str] = []

    def action() -> None:
        calls.append("called")
        if refuses:
            raise UsageError("reason", "a reason is required")

    went = post_and_report(request, action, done="Order discontinued.",
                           refused="Not discontinued")
    shown = [str(m) for m in get_messages(request)]
    assert calls == ["called"]
    assert went is not refuses
    assert shown == (["Not discontinued. Reason: a reason is required."] if refuses
                     else ["Order discontinued."])
