"""`make bench`: run every benchmark in bench/ (each `bench/<name>.py`), one after another.

Each benchmark makes and drops its own scratch database and prints its figures; this
prints a one-line verdict per benchmark at the end. Exit status 1 if any missed its aim
or failed. Extra arguments select benchmarks by name: `make bench ARGS=sync_salesforce`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem != "run_all" and p.stem[0] != "_")
    if argv:
        names = [n for n in names if n in argv]
    verdicts = []
    for name in names:
        print(f"=== bench/{name}.py", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent)
        verdicts.append((name, code, time.perf_counter() - started))
    print("=== summary")
    for name, code, seconds in verdicts:
        print(f"{name:30s} {'ok' if code == 0 else f'exit {code}':>8s}  {seconds:6.1f}s")
    return 0 if all(code == 0 for _, code, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
