"""Write requirements.lock: the exact version of every package the project and its tests need.

Run by ``make lock`` in a virtual environment where ``make test`` passed. It walks the
requirements of requirements-dev.txt (and theirs, and so on) through the installed packages'
metadata, so tools installed by hand (a profiler, pip-audit) stay out. ``make install`` uses the
file as pip constraints: a fresh machine gets the versions that were tested, not the newest.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parents[1]


def _top_level(path: Path) -> list[Requirement]:
    out = []
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            out += _top_level(path.parent / line[2:].strip())
            continue
        try:
            out.append(Requirement(line))
        except InvalidRequirement:
            continue
    return out


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Installed name -> version for ``roots`` and everything they need here (markers evaluated)."""
    env = default_environment()
    seen: dict[str, str] = {}
    todo = [(r, "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({**env, "extra": extra}):
            continue
        key = _key(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        new = key not in seen
        seen[key] = dist.version
        for sub in dist.requires or []:
            sub_req = Requirement(sub)
            wanted = set(req.extras)
            if sub_req.marker and "extra" in str(sub_req.marker):
                for e in wanted:
                    if sub_req.marker.evaluate({**env, "extra": e}):
                        todo.append((Requirement(str(sub_req).split(";")[0]), e))
                continue
            if new:
                todo.append((sub_req, ""))
    return seen


def main() -> int:
    versions = closure(_top_level(ROOT / "requirements-dev.txt"))
    # The local CPU build's "+cpu" tag is not part of the version requirements.txt asks for.
    lines = [f"{name}=={version.split('+')[0]}" for name, version in sorted(versions.items())]
    header = ("# Exact versions `make test` passed with; `make install` uses them as pip constraints.\n"
              "# Regenerate with `make lock` after changing requirements*.txt.\n")
    (ROOT / "requirements.lock").write_text(header + "\n".join(lines) + "\n", "utf-8")
    print(f"requirements.lock: {len(lines)} packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
