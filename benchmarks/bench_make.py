"""Does a second ``make`` target do install work? ``make lint`` against ``ruff check .`` alone.

Run: ``.venv/bin/python benchmarks/bench_make.py [--repeat 3]`` from the repository root.
``make install`` runs once first (whatever it has to do); then, ``--repeat`` times each,
``make lint`` (install step included, as a person runs it) and the command the target runs
(``.venv/bin/ruff check .``) alone. The difference is what the install step costs when
nothing changed; the issue 17 goal is that it does no install work (``uv sync`` installs,
uninstalls and rebuilds nothing). Prints the medians, their difference and what ``uv sync``
reported. Results are figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _median_s(argv: list[str], repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        out = run.stdout + run.stderr
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    subprocess.run(["make", "install"], cwd=ROOT, capture_output=True, check=True)
    alone, _ = _median_s([str(ROOT / ".venv" / "bin" / "ruff"), "check", "."], args.repeat)
    target, out = _median_s(["make", "lint"], args.repeat)
    sync, _ = _median_s([str(ROOT / ".tools" / "bin" / "uv"), "sync", "--frozen", "--check"],
                        args.repeat)
    compiled, _ = _median_s([str(ROOT / ".venv" / "bin" / "python"), "-m", "compileall", "-q",
                             "src"], args.repeat)
    parse, _ = _median_s(["make", "-n", "lint"], args.repeat)
    work = [line.strip() for line in out.splitlines()
            if any(w in line for w in ("Installed", "Uninstalled", "Built", "Creating",
                                       "Removed virtual environment"))]
    print(f"make lint (second and later runs): {target:.2f} s; ruff check . alone: "
          f"{alone:.2f} s; the install step: {target - alone:+.2f} s "
          f"(median of {args.repeat})")
    print(f"  of which make reading the Makefile (it asks the interpreter for its path) "
          f"{parse:.2f} s, uv sync --check {sync:.2f} s, compileall of src {compiled:.2f} s; "
          f"uv sync install work on the last run: {work or 'none'}")


if __name__ == "__main__":
    main()
