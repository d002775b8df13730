"""`make audit`: pip-audit over requirements.lock, saying plainly when it could not look.

pip-audit asks PyPI's vulnerability data for each pinned package. From a machine that
cannot reach that service it "skips" every package and still exits 0, which would read as
"no known vulnerabilities". This says so instead, and exits 2: nothing was audited.
"""

from __future__ import annotations

import json
import subprocess  # nosec B404 # runs pip-audit, a fixed command
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "-r",
        str(ROOT / "requirements.lock"),
        "--require-hashes",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--format",
        "json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 # a fixed argument list
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"make audit: pip-audit failed: {done.stderr.strip()[-500:]}")
        return 2
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if "skip_reason" in d]
    if dependencies and len(skipped) == len(dependencies):
        print(
            f"make audit: pip-audit could not reach its vulnerability service from this "
            f"machine ({skipped[0]['skip_reason']}); none of the {len(dependencies)} pinned "
            "packages was audited. Run `make audit` where PyPI's API is reachable."
        )
        return 2
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"{dep['name']} {dep['version']}: {ids}")
    print(
        f"make audit: {len(dependencies) - len(skipped)} packages audited, "
        f"{len(skipped)} not found, {len(vulnerable)} with known vulnerabilities."
    )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
