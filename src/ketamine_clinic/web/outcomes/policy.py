"""The follow-up schedule, link lifetime and loss-of-response rule (``reference/follow_up.toml``).

Everything here is clinic policy with its source; the one place that reads that file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml


@dataclass(frozen=True)
class Point:
    key: str
    label: str
    anchor: str  # "series_start", "session" or "series_end"
    offset_days: int
    outcome_day: int | None  # day after the series end it stands for; None: not a follow-up


@dataclass(frozen=True)
class LossRule:
    percent: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"percent": self.percent, "source": self.source}


def _data() -> Mapping[str, Any]:
    return read_toml("follow_up.toml")


@cache
def points() -> tuple[Point, ...]:
    return tuple(Point(p["key"], p["label"], p["anchor"], int(p["offset_days"]),
                       p.get("outcome_day"))
                 for p in _data()["schedule"]["point"])


def point(key: str) -> Point:
    for p in points():
        if p.key == key:
            return p
    raise UsageError("point", f"{key!r} is not a follow-up point")


def point_labels() -> dict[str, str]:
    return {"end": "End of infusion", **{p.key: p.label for p in points()}}


def schedule_source() -> str:
    return str(_data()["schedule"]["source"])


def clinic_loss_rule() -> LossRule:
    raw = _data()["loss_of_response"]
    return LossRule(float(raw["percent"]), str(raw["source"]))


@cache
def _protocol_loss_rule(toml_text: str, label: str) -> LossRule | None:
    # Only this one optional key is read from the protocol's stored text: the protocol
    # format may add ``[outcomes] loss_of_response_percent``; until it does, clinic policy.
    try:
        data = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError:
        return None
    section = data.get("outcomes")
    if not isinstance(section, dict) or "loss_of_response_percent" not in section:
        return None
    return LossRule(float(section["loss_of_response_percent"]),
                    str(section.get("loss_of_response_source", f"protocol {label}")))


def loss_rule_for(protocol_version: Any | None) -> LossRule:
    """The protocol version's loss-of-response rule if it sets one, else clinic policy."""
    if protocol_version is not None:
        rule = _protocol_loss_rule(protocol_version.toml_text,
                                   f"{protocol_version.name} v{protocol_version.version}")
        if rule is not None:
            return rule
    return clinic_loss_rule()


def link_valid_hours() -> int:
    return int(_data()["patient_link"]["valid_hours"])


def due_soon_days() -> int:
    return int(_data()["worklist"]["due_soon_days"])


def global_impression_choices() -> list[tuple[int, str]]:
    return [(int(c["value"]), str(c["meaning"]))
            for c in _data()["questionnaire"]["global_impression"]]


def global_impression_source() -> str:
    return str(_data()["questionnaire"]["global_impression_source"])


def mme_per_day_max() -> float:
    return float(_data()["questionnaire"]["mme_per_day_max"])
