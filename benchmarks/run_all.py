"""Run every benchmark in turn, each in its own process, passing ``--quick`` through.

FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/run_all.py --quick  # make bench (about 4 minutes)
FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/run_all.py          # make bench-full
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["extract.py", "cli.py", "store.py", "checks.py", "checks_speed.py", "memory.py",
           "projections.py", "teaching.py"]  # fmt: skip
FULL_ONLY = [
    "app_projections.py",
    "ray_engine.py",
    "checks_vs.py",
    "analysis_scale.py",
    "app_scale.py",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller version of each")
    args = parser.parse_args()
    failed = []
    for script in SCRIPTS + ([] if args.quick else FULL_ONLY):
        start = time.perf_counter()
        command = [sys.executable, str(HERE / script)] + (["--quick"] if args.quick else [])
        code = subprocess.run(command, check=False).returncode
        print(f"({script}: {time.perf_counter() - start:.0f} s, exit {code})\n", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
