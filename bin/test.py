"""`make test`: run the suite on real PostgreSQL and Redis.

Uses DATABASE_URL / REDIS_URL when set, else the servers on 127.0.0.1 when they answer,
else embedded ones (bin/services.py). Extra arguments go to pytest; `--bench` runs the
benchmarks instead.
"""

from __future__ import annotations

import os
import secrets
import subprocess  # nosec B404 # bin/ starts Portfolio's own processes
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    found = services.ensure(prefer_local=True, redis_db=int(os.environ.get("TEST_REDIS_DB", "1")))
    try:
        print("make test: " + "; ".join(found.notes or ["DATABASE_URL and REDIS_URL from env"]))
        env = dict(os.environ)
        env.update(
            DATABASE_URL=found.database_url,
            REDIS_URL=found.redis_url,
            SECRET_KEY=env.get("SECRET_KEY") or secrets.token_urlsafe(40),
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        # Tests run with production settings, whatever `.env` (written by make run) says.
        env["DEBUG"] = "0"
        env["PORTFOLIO_ENV_FILE"] = ""
        if argv[:1] == ["--bench"]:
            cmd = [sys.executable, "bench/run_all.py", *argv[1:]]
        else:
            cmd = [sys.executable, "-m", "pytest", *argv]
        return subprocess.call(cmd, cwd=ROOT, env=env)  # nosec B603 # a fixed argument list of our own commands
    finally:
        found.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
