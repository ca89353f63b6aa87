"""Audit requirements.lock for known vulnerabilities with pip-audit (``make check``).

pip-audit asks PyPI's JSON API (the only vulnerability service reachable from our machines) about
each pinned version. Where that service cannot answer (offline, or behind a mirror that lacks the
API) the packages are "skipped"; pip-audit would still print "No known vulnerabilities found", so
this wrapper says how many were really audited and fails only on a vulnerability that was found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    proc = subprocess.run([sys.executable, "-m", "pip_audit", "-r", str(ROOT / "requirements.lock"), "--no-deps",
                           "--disable-pip", "--progress-spinner", "off", "--format", "json"],
                          capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        print(f"Dependency audit could not run: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return 0
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    for d in vulnerable:
        for v in d["vulns"]:
            print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions', [])) or '?'})")
    audited = len(deps) - len(skipped)
    print(f"Dependency audit: {audited} of {len(deps)} pinned packages audited, {len(vulnerable)} with known "
          "vulnerabilities.")
    if skipped:
        print(f"  {len(skipped)} could not be audited from here (the vulnerability service did not know them, "
              "e.g. no internet); run `make check` where https://pypi.org is reachable.")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    raise SystemExit(main())
