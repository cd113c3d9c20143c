"""Checks the serving profiles against the config database of the pinned release.

    python3 check_profiles.py PROFILES_DIR DATABASE_DIR

Each profile (`<checkpoint>-<profile>.yaml`) names the database entry it
copies in its header (`# Source : NVIDIA/TensorRT-LLM, examples/configs/
database/<entry>`). The serving image's build runs this inside NVIDIA's
TensorRT-LLM release image, whose `/app/tensorrt_llm/examples/` holds the
repository's examples at that release (docker/Dockerfile.multi of
NVIDIA/TensorRT-LLM, `release` stage: `COPY examples examples` in
/app/tensorrt_llm). A profile whose values differ from its entry, or whose
entry is missing, fails the build with a diff of the two.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

import yaml

DATABASE_PREFIX = "examples/configs/database/"
_SOURCE = re.compile(r"^# Source\s*:\s*NVIDIA/TensorRT-LLM,\s*(\S+)\s*$", re.MULTILINE)


def source_entry(profile_text: str) -> str | None:
    """The database path the profile's header names, relative to the database."""
    match = _SOURCE.search(profile_text)
    if not match or not match.group(1).startswith(DATABASE_PREFIX):
        return None
    return match.group(1)[len(DATABASE_PREFIX) :]


def canonical(values: object) -> list[str]:
    return yaml.safe_dump(values, sort_keys=True, default_flow_style=False).splitlines()


def check(profiles: Path, database: Path) -> list[str]:
    """One message per problem; empty when every profile matches its entry."""
    if not database.is_dir():
        return [
            f"{database}: no config database in this image; the release keeps it "
            "elsewhere (pass its folder as the second argument)"
        ]
    problems = []
    files = sorted(profiles.glob("*.yaml"))
    if not files:
        problems.append(f"{profiles}: no profile (*.yaml)")
    for profile in files:
        text = profile.read_text()
        entry = source_entry(text)
        if entry is None:
            problems.append(f"{profile.name}: its header names no `# Source : ...` database entry")
            continue
        published = database / entry
        if not published.is_file():
            problems.append(f"{profile.name}: {entry} is not in the database at {database}")
            continue
        ours, theirs = yaml.safe_load(text), yaml.safe_load(published.read_text())
        if ours != theirs:
            diff = difflib.unified_diff(
                canonical(theirs),
                canonical(ours),
                fromfile=f"database/{entry}",
                tofile=f"profiles/{profile.name}",
                lineterm="",
            )
            problems.append(
                f"{profile.name} differs from {entry} in this release:\n" + "\n".join(diff)
            )
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    problems = check(Path(argv[0]), Path(argv[1]))
    for problem in problems:
        print(f"check_profiles: {problem}", file=sys.stderr)
    if problems:
        print(
            "check_profiles: copy the release's entries into docker/profiles/ (keep the "
            "headers, update Commit), or pin the release they were validated on",
            file=sys.stderr,
        )
        return 1
    print(f"check_profiles: {len(list(Path(argv[0]).glob('*.yaml')))} profiles match {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
