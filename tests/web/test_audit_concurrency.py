"""Concurrent writers against a real server: every audited request succeeds and the trail
stays one unbroken chain (issue 20: on SQLite two requests took the same sequence number).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.audit.models import AuditEntry, AuditLink
from ketamine_clinic.web.audit.services import audit_seal, audit_verify

CLIENTS = 8
REQUESTS_PER_CLIENT = 12


def _request(url: str, token: str, body: dict[str, Any] | None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_concurrent_audited_requests_all_succeed_and_number_the_trail_without_gaps(
    transactional_db: Any, cast: Any, live_server: Any
) -> None:
    _, token = ApiToken.issue(cast.bob, label="concurrency")
    base = f"{live_server.url}/api/v1/patients/{cast.ana.pk}"
    before = AuditEntry.objects.count()
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        start.wait()
        for i in range(REQUESTS_PER_CLIENT):
            if i % 2:  # an audited write
                status = _request(f"{base}/measurements", token, {
                    "kind": "weight_kg", "value_number": str(60 + n),
                    "measured_at": datetime.now(UTC).isoformat()})
            else:  # an audited read
                status = _request(base, token, None)
            with lock:
                statuses.append(status)

    done = threading.Event()
    sealer_errors: list[Exception] = []

    def sealer() -> None:  # two sealers at work while the clients write, as a worker would
        from django.db import connection

        try:
            while not done.wait(0.5):
                audit_seal()
        except Exception as exc:  # the test fails on it below
            sealer_errors.append(exc)
        finally:
            connection.close()

    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in sealers + threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in sealers:
        t.join()

    assert sealer_errors == []
    assert sorted(set(statuses)) == [200, 201]
    assert len(statuses) == CLIENTS * REQUESTS_PER_CLIENT
    assert AuditEntry.objects.count() >= before + len(statuses)
    audit_seal()
    seqs = list(AuditLink.objects.order_by("seq").values_list("seq", flat=True))
    assert len(seqs) == AuditEntry.objects.count()  # every entry has its place
    assert seqs == list(range(1, len(seqs) + 1))  # unique and gapless
    report = audit_verify()
    assert report.ok, report.problems
    assert report.entries == len(seqs)
