"""The write path's reading of a session: a vital-sign set is read and decided before the
lock (and from the rows this process read before), and must come to exactly what the
full reading of the pages comes to; a session changed in between is read again."""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from ketamine_clinic.clinical.bedside import decisions as cmd
from ketamine_clinic.clinical.bedside.model import Entry
from ketamine_clinic.clinical.bedside.view import record_of
from ketamine_clinic.errors import Refusal
from ketamine_clinic.web.sessions import facts, selectors, services
from ketamine_clinic.web.sessions.models import Alarm, TimelineEntry
from tests.web.sessions.conftest import VITALS, Walk, key


def _both_views(walk: Walk) -> tuple[object, object]:
    now = timezone.now()
    session = selectors.sessions_visible_to(walk.c.cast.bob).get(pk=walk.s.pk)
    rules = selectors.session_rules(session)
    light = selectors.light_facts(session)
    page = selectors.snapshot(session, now=now, rules=rules, gates=False, facts=light).view
    write = selectors.snapshot_for_write(session, now=now, rules=rules, facts=light).view
    return page, write


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_write_path_reads_the_same_view_as_the_pages_over_a_corrected_timeline(
        walk: Walk, seed: int) -> None:
    """Random vital signs, rate changes, a pause and resume, corrections and entries
    marked in error, some back-dated: after each step the write path's view (read as
    values, folded onto the record kept from the step before) equals the pages' view."""
    rng = random.Random(seed)
    walk.infusing()
    minute = 31.0
    paused = False
    for _step in range(14):
        minute += rng.choice([0.5, 1, 3])
        move = rng.random()
        rows = list(TimelineEntry.objects.filter(session=walk.s, kind="vitals",
                                                 corrects__isnull=True)
                    .exclude(corrections__isnull=False))
        if move < 0.45:
            at = minute - rng.choice([0, 0, 2])  # some sets charted late
            walk.observe("vitals", at, **{**VITALS, "heart_rate_per_min": rng.randint(50, 140)})
        elif move < 0.6 and rows:
            target = rng.choice(rows)
            services.session_entry_correct(
                actor=walk.nurse, session=walk.s, entry=target, reason="typed in the wrong box",
                data={"heart_rate_per_min": rng.randint(55, 95)}, idempotency_key=key())
        elif move < 0.7 and rows:
            services.session_entry_correct(
                actor=walk.nurse, session=walk.s, entry=rng.choice(rows),
                reason="another patient's set", entered_in_error=True, idempotency_key=key())
        elif move < 0.85:
            walk.event("resume" if paused else "pause", minute)
            paused = not paused
        elif not paused:
            with contextlib.suppress(Refusal):  # a step the order does not allow
                walk.rate(rng.choice(["30 mg/h", "45 mg/h", "60 mg/h"]), minute)
        page, write = _both_views(walk)
        # The record kept from the writes before, with the rows since folded onto it, is
        # the whole timeline read through the ORM and folded again.
        rows = TimelineEntry.objects.filter(session=walk.s).order_by("id")
        assert facts.record_as_core(walk.s.pk) == record_of(facts.entries_as_core(rows))
        assert write == page
        assert write.totals == page.totals  # type: ignore[attr-defined]
        assert write.limit_check == page.limit_check  # type: ignore[attr-defined]
        assert write.overdue == page.overdue  # type: ignore[attr-defined]


def test_a_vital_sign_set_decided_before_the_lock_is_decided_again_if_the_session_changed(
        walk: Walk) -> None:
    """The early read sees no baseline-breaking set; a set charted in between (one more
    entry) makes the stamp differ, so the write is judged again under the lock."""
    walk.infusing()
    now = timezone.now()
    session = selectors.sessions_visible_to(walk.c.cast.bob).get(pk=walk.s.pk)
    command = cmd.Observe(walk.at(39), "vitals", dict(VITALS))
    early = services._decided_early(session, now, command)
    assert early is not None
    assert services._locked_as_read(session, early, None)[0]
    walk.observe("vitals", 38, **VITALS)
    assert not services._locked_as_read(session, early, None)[0]
    # An acknowledgement changes the alarms' open keys without a new entry: also seen.
    walk.observe("vitals", 38.5, **{**VITALS, "spo2_percent": 80})
    session = selectors.sessions_visible_to(walk.c.cast.bob).get(pk=walk.s.pk)
    early = services._decided_early(session, timezone.now(), command)
    assert early is not None
    alarm = Alarm.objects.filter(session=walk.s).first()
    assert alarm is not None
    services.alarm_acknowledge(actor=walk.nurse, alarm=alarm, response="oxygen on, resolved")
    assert not services._locked_as_read(session, early, None)[0]


def test_an_alarm_raised_after_an_early_read_of_a_session_without_any_is_seen_under_the_lock(
        walk: Walk) -> None:
    """The early read of a session with no alarm stored reads no alarm rows; one raised in
    between (no new entry) makes the stamp differ. With alarms stored, the early view
    holds the same alarms as the pages' view."""
    walk.infusing()
    session = selectors.sessions_visible_to(walk.c.cast.bob).get(pk=walk.s.pk)
    command = cmd.Observe(walk.at(39), "vitals", dict(VITALS))
    early = services._decided_early(session, timezone.now(), command)
    assert early is not None
    assert early.snap.view.alarms == ()
    Alarm.objects.create(session=walk.s, kind="overdue", message="vital signs overdue",
                         detail={"key": "overdue:test"}, raised_at=timezone.now())
    assert not services._locked_as_read(session, early, None)[0]
    early = services._decided_early(session, timezone.now(), command)
    assert early is not None
    page, _ = _both_views(walk)
    assert len(early.snap.view.alarms) == 1
    assert early.snap.view.alarms == page.alarms  # type: ignore[attr-defined]
    assert services._locked_as_read(session, early, None)[0]
    alarm = Alarm.objects.get(session=walk.s)
    services.alarm_acknowledge(actor=walk.nurse, alarm=alarm, response="vital signs taken")
    early = services._decided_early(session, timezone.now(), command)
    assert early is not None
    page, _ = _both_views(walk)
    assert [a.acknowledged for a in early.snap.view.alarms] == [True]
    assert early.snap.view.alarms == page.alarms  # type: ignore[attr-defined]


def test_a_session_read_before_a_change_is_not_decided_early(walk: Walk) -> None:
    walk.infusing()
    session = selectors.sessions_visible_to(walk.c.cast.bob).get(pk=walk.s.pk)
    walk.event("pause", 35)
    command = cmd.Observe(walk.at(36), "vitals", dict(VITALS))
    assert services._decided_early(session, timezone.now(), command) is None


def test_a_kept_timeline_whose_last_row_is_not_in_the_database_is_read_again(
        walk: Walk) -> None:
    """Rows kept from before (a test rolled back, a database restored) whose last id now
    names another row are not used."""
    walk.infusing()
    truth = facts.record_as_core(walk.s.pk, fresh=True)
    last = truth.entries[-1]
    forged = Entry(id=last.id, kind="vitals", at=last.at - timedelta(minutes=1),
                   payload={"heart_rate_per_min": 200}, recorded_at=last.recorded_at)
    facts._timelines[walk.s.pk] = record_of((*truth.entries[:-1], forged))
    assert facts.record_as_core(walk.s.pk) == truth
    # An older read: the rows since are folded onto it.
    facts._timelines[walk.s.pk] = record_of(truth.entries[:-2])
    assert facts.record_as_core(walk.s.pk) == truth


def test_a_vital_sign_set_through_the_api_stores_its_key_with_the_entry(walk: Walk) -> None:
    """The vitals endpoint opens its own transaction; the idempotency key is stored in it:
    a retry replays the stored entry, the same key with another body is refused."""
    from django.test import Client

    from ketamine_clinic.web.accounts.models import ApiToken

    walk.infusing()
    _, raw = ApiToken.issue(walk.c.cast.bob, label="monitor")
    c = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {**VITALS, "idempotency_key": "chair-1-0001"}
    url = f"/api/v1/sessions/{walk.s.pk}/vitals"
    first = c.post(url, body, content_type="application/json")
    assert first.status_code == 201, first.content
    again = c.post(url, body, content_type="application/json")
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["id"] == first.json()["id"]
    other = c.post(url, {**body, "heart_rate_per_min": 99}, content_type="application/json")
    assert other.status_code == 409
    assert TimelineEntry.objects.filter(session=walk.s, kind="vitals").count() == 2


def test_the_write_paths_session_read_keeps_to_the_users_sites_and_reads_the_whole_rows(
        walk: Walk) -> None:
    """The bedside write's session read (SQL of its own) finds a session for exactly the
    users ``sessions_visible_to`` finds it for, and reads the session, its order, the
    order's protocol version and the site as the ORM reads them; a refusal is audited."""
    from django.http import Http404

    from ketamine_clinic.web.accounts.models import User
    from ketamine_clinic.web.audit.models import AuditEntry

    walk.infusing()
    cast = walk.c.cast
    for user in User.objects.all():
        visible = selectors.sessions_visible_to(user).filter(pk=walk.s.pk).first()
        actor = walk.c.actor(user)
        if visible is None:
            before = AuditEntry.objects.filter(action="session.access_denied").count()
            with pytest.raises(Http404):
                selectors.session_get_for_write(user, walk.s.pk, actor)
            assert AuditEntry.objects.filter(action="session.access_denied").count() == \
                before + 1
            continue
        lean = selectors.session_get_for_write(user, walk.s.pk, actor)
        for got, orm in ((lean, visible), (lean.order, visible.order),
                         (lean.order.protocol_version, visible.order.protocol_version),
                         (lean.site, visible.site)):
            fields = type(orm)._meta.concrete_fields
            assert [getattr(got, f.attname) for f in fields] == \
                [getattr(orm, f.attname) for f in fields]
    assert {u.username for u in User.objects.all()
            if selectors.sessions_visible_to(u).filter(pk=walk.s.pk).exists()} != \
        {u.username for u in User.objects.all()}  # someone (Oscar, Boulder) is refused
    with pytest.raises(Http404):
        selectors.session_get_for_write(cast.bob, walk.s.pk + 1000, walk.c.actor(cast.bob))


def test_a_session_from_the_write_paths_read_is_decided_early_without_asking_for_its_stamp(
        walk: Walk) -> None:
    """The write path's session read counts the session's alarms in the same statement:
    deciding a vital-sign set on it asks nothing more of the session row (no stamp query),
    reads the alarm rows only when there are some, and comes to the pages' view."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    walk.infusing()
    bob = walk.c.cast.bob
    command = cmd.Observe(walk.at(39), "vitals", dict(VITALS))
    for alarms in (0, 1):
        session = selectors.session_get_for_write(bob, walk.s.pk, walk.c.actor(bob))
        assert selectors.alarms_counted(session) == alarms
        with CaptureQueriesContext(connection) as queries:
            early = services._decided_early(session, timezone.now(), command)
        assert early is not None
        sql = [q["sql"] for q in queries.captured_queries]
        assert not any("COUNT(" in q for q in sql), sql
        assert sum(Alarm._meta.db_table in q for q in sql) == alarms, sql
        page, _ = _both_views(walk)
        assert early.snap.view.alarms == page.alarms  # type: ignore[attr-defined]
        assert services._locked_as_read(session, early, None)[0]
        walk.observe("vitals", 38, **{**VITALS, "spo2_percent": 80})  # raises an alarm
    orm = selectors.sessions_visible_to(bob).get(pk=walk.s.pk)
    assert selectors.alarms_counted(orm) is None


def test_under_the_lock_a_set_decided_early_reads_its_stamp_and_its_key_after_locking(
        walk: Walk) -> None:
    """Under the lock, a vital-sign set decided early reads the stamp and the entry holding
    its key in one statement, after the statement that locks the row (PostgreSQL; on
    SQLite the transaction holds the write lock); a retry is replayed from that read."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    walk.infusing()
    bob = walk.c.cast.bob

    def write() -> services.Written:
        session = selectors.session_get_for_write(bob, walk.s.pk, walk.c.actor(bob))
        return services.session_observe(actor=walk.nurse, session=session, kind="vitals",
                                        data=dict(VITALS), idempotency_key="chair-3-0001")

    with CaptureQueriesContext(connection) as queries:
        first = write()
    sql = [q["sql"] for q in queries.captured_queries]
    keyed = [i for i, q in enumerate(sql) if "idempotency_key =" in q]
    assert len(keyed) == 1, sql
    assert "COUNT(" in sql[keyed[0]]
    locks = [i for i, q in enumerate(sql) if "FOR UPDATE" in q]
    if connection.features.has_select_for_update:
        assert len(locks) == 1, sql
        assert locks[0] == keyed[0] - 1, sql
        assert "COUNT(" not in sql[locks[0]]
    else:
        assert locks == []
    again = write()
    assert again.replayed
    assert again.entry.pk == first.entry.pk


@pytest.mark.django_db
def test_a_commit_on_sqlite_is_synced_to_disk_before_it_is_acknowledged() -> None:
    """WAL with synchronous=FULL: a vital-sign set the monitor was told is stored survives
    a power cut (NORMAL would sync the log only at checkpoints)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the SQLite file's setting; PostgreSQL syncs every commit by default")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2  # FULL
