"""When reminders go out and the contact consent text (``reference/reminders.toml``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from ketamine_clinic.reference import read_toml


@dataclass(frozen=True)
class VisitReminder:
    key: str
    days_before: int
    send_at: time

    def when(self, visit_day: date, tz: ZoneInfo) -> datetime:
        return datetime.combine(visit_day - timedelta(days=self.days_before), self.send_at, tz)


@dataclass(frozen=True)
class Policy:
    version: int
    visit_reminders: tuple[VisitReminder, ...]
    follow_up_send_at: time
    quiet_starts: time
    quiet_ends: time
    consent_version: int
    consent_text: str

    @property
    def consent_sha256(self) -> str:
        return hashlib.sha256(self.consent_text.encode()).hexdigest()

    def in_quiet_hours(self, local: datetime) -> bool:
        t = local.time()
        if self.quiet_starts > self.quiet_ends:  # over midnight
            return t >= self.quiet_starts or t < self.quiet_ends
        return self.quiet_starts <= t < self.quiet_ends

    def after_quiet_hours(self, local: datetime) -> datetime:
        """``local`` itself, or the end of the quiet hours it falls in."""
        if not self.in_quiet_hours(local):
            return local
        end = datetime.combine(local.date(), self.quiet_ends, local.tzinfo)
        return end if end > local else end + timedelta(days=1)


@cache
def policy() -> Policy:
    d = read_toml("reminders.toml")
    return Policy(
        version=int(d["version"]),
        visit_reminders=tuple(VisitReminder(r["key"], int(r["days_before"]),
                                            time.fromisoformat(r["send_at"]))
                              for r in d["visit_reminder"]),
        follow_up_send_at=time.fromisoformat(d["follow_up"]["send_at"]),
        quiet_starts=time.fromisoformat(d["quiet_hours"]["starts"]),
        quiet_ends=time.fromisoformat(d["quiet_hours"]["ends"]),
        consent_version=int(d["consent"]["version"]), consent_text=d["consent"]["text"])
