"""`make bench`: run every benchmark in bench/ (each `bench/<name>.py`), one after another.

Each benchmark makes and drops its own scratch database and prints its figures; this
prints a one-line verdict per benchmark at the end. Exit status 1 if any missed its aim
or failed. Extra arguments select benchmarks by name: `make bench ARGS=sync_salesforce`.

    bench/run_all.py [NAME ...] [--db-prefix PREFIX] [--accounts N]

`--db-prefix` names the scratch databases (`<PREFIX>bench_<name>`, passed on as
$BENCH_DB_PREFIX); `--accounts` is passed to every benchmark that takes it (e.g. 1000000 for
the 1M figures of docs/performance.md). The load average is printed before and after each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--db-prefix", default=None)
    parser.add_argument("--accounts", type=int, default=None)
    args = parser.parse_args(argv)
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem != "run_all" and p.stem[0] != "_")
    if args.names:
        names = [n for n in names if n in args.names]
    env = dict(os.environ)
    if args.db_prefix:
        env["BENCH_DB_PREFIX"] = args.db_prefix
    verdicts = []
    for name in names:
        command = [sys.executable, str(HERE / f"{name}.py")]
        if args.accounts and '"--accounts"' in (HERE / f"{name}.py").read_text():
            command += ["--accounts", str(args.accounts)]
        print(f"=== bench/{name}.py (load average {_load()})", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=HERE.parent, env=env)  # nosec B603 # our own benchmarks
        verdicts.append((name, code, time.perf_counter() - started))
        print(f"=== bench/{name}.py done (load average {_load()})", flush=True)
    print("=== summary")
    for name, code, seconds in verdicts:
        print(f"{name:30s} {'ok' if code == 0 else f'exit {code}':>8s}  {seconds:6.1f}s")
    return 0 if all(code == 0 for _, code, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
