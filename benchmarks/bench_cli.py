"""How long the ``ketamine-clinic`` command takes to answer, against ``python -c pass``.

Run: ``.venv/bin/python benchmarks/bench_cli.py [--repeat 7]``. Each command runs as a
fresh process of the installed console script (the way a person types it), ``--repeat``
times; the figure is the median wall-clock time, printed beside the median of
``python -c pass`` (the interpreter's own start-up) from the same run, and the modules the
command imported. The goals of issue 17: ``--help`` under 0.3 s, ``screen`` and ``dose``
under 0.6 s. Results are figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FACTS = {
    "age_years": 40, "sex_at_birth": "female", "pregnant": False, "weight_kg": 70,
    "diagnoses": ["G90.511"], "conditions": [], "conditions_unknown": [],
    "medications": ["gabapentin"],
    "budapest": {"disproportionate_pain": True,
                 "symptoms": ["allodynia", "skin_colour_change", "oedema"],
                 "signs": ["allodynia", "oedema"], "no_better_diagnosis": True},
}


def _median_s(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU time (user + system, of the child) [s]."""
    times, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpus)


def _heavy_modules(python: str, args: list[str]) -> list[str]:
    """Which of the heavy libraries the command imported (run once in-process)."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['ketamine-clinic', *{args!r}]\n"
        "try:\n"
        "    from ketamine_clinic.cli import main\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('django', 'scipy', 'numpy', 'pint', 'plotly', 'ninja', 'pydantic')\n"
        "print(sorted(h for h in heavy if h in sys.modules))\n"
    )
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip().splitlines()[-1:] or ["?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--venv", type=Path, default=Path(sys.executable).parent.parent,
                        help="the virtual environment whose command to time (default: this one)")
    args = parser.parse_args()
    python = str(args.venv / "bin" / "python")
    cli = str(args.venv / "bin" / "ketamine-clinic")
    n_pyc = sum(1 for _ in args.venv.rglob("*.pyc"))
    with tempfile.TemporaryDirectory() as tmp:
        facts = Path(tmp) / "facts.json"
        facts.write_text(json.dumps(FACTS))
        commands = {
            "--help": ["--help"],
            "screen": ["screen", "--protocol", "clinic-standard", str(facts)],
            "dose": ["dose", "--protocol", "clinic-standard", "--weight-kg", "70",
                     "--rate", "0.5 mg/kg/h", "--bag", "500 mg in 500 mL"],
            "protocols list": ["protocols", "list"],
            "pk --help": ["pk", "--help"],
        }
        env_note = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
        base, base_cpu = _median_s([python, "-c", "pass"], args.repeat)
        print(f"python -c pass: {base * 1000:.0f} ms wall, {base_cpu * 1000:.0f} ms CPU "
              f"(median of {args.repeat}; PYTHONDONTWRITEBYTECODE={env_note or 'unset'}; "
              f"{n_pyc} compiled files in {args.venv})")
        print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(on a loaded machine the CPU time is the steadier figure)")
        for name, argv in commands.items():
            t, cpu = _median_s([cli, *argv], args.repeat)
            heavy = _heavy_modules(python, argv)[0]
            print(f"ketamine-clinic {name:<15} {t * 1000:6.0f} ms wall = {t / base:5.1f}x "
                  f"python -c pass ({base * 1000:.0f} ms); {cpu * 1000:5.0f} ms CPU "
                  f"(python -c pass {base_cpu * 1000:.0f} ms); imports {heavy}")


if __name__ == "__main__":
    main()
