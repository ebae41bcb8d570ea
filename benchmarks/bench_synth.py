"""How fast the synthetic cohort generator makes patients and sessions.

Run: ``.venv/bin/python benchmarks/bench_synth.py [n_patients]`` (default 10,000). Prints
patients, sessions, vital-sign sets, seconds and sessions per second, with a tqdm
progress bar per chunk, as the demo loader would show it.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ketamine_clinic.synth import CohortParams, iter_cohort


def main(n_patients: int) -> None:
    params = CohortParams.default(n_patients, seed=1)
    started = time.perf_counter()
    sessions = vitals = 0
    with tqdm(total=n_patients, unit="patient") as bar:
        for chunk in iter_cohort(params, chunk_size=500):
            sessions += chunk.sessions
            vitals += sum(
                len(s.vitals) for r in chunk.patients for se in r.series for s in se.sessions
            )
            bar.update(len(chunk.patients))
    seconds = time.perf_counter() - started
    print(
        f"{n_patients} patients, {sessions} sessions, {vitals} vital-sign sets "
        f"in {seconds:.1f} s ({sessions / seconds:.0f} sessions/s)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
