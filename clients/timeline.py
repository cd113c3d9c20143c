"""The cold-start timeline: when each phase of a deployment started and ended.

    python -m clients.timeline gs://BUCKET/timeline/     (or a local folder or file)
    python -m clients.report RESULTS --timeline gs://BUCKET/timeline/

Each writer keeps one JSON document per run in the stack's bucket under
`timeline/`: the weights stager (docker/weights/fetch_weights.py, one per Cloud
Build run) and every serving pod (docker/serve.sh: image pulled, weights
copied to the node's local SSD, server start, ready). A document is

    {"writer": "...", "run": "...", "model": "...", "host": "...",
     "events": [{"phase": "download", "event": "start", "time": "2026-...Z",
                 "detail": {...}}, ...]}

with `event` one of `start`, `end`, `failed` or `mark` (an instant).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


class TimelineEvent(StrEnum):
    """The `event` of a timeline entry."""

    START = "start"
    END = "end"
    FAILED = "failed"
    MARK = "mark"  # an instant


class TimelineError(Exception):
    """The source as a whole cannot be read."""


@dataclass(frozen=True)
class Event:
    phase: str
    event: TimelineEvent
    time: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    writer: str
    run: str
    model: str
    host: str
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Phase:
    run: Run
    name: str
    start: datetime
    end: datetime | None  # None: still running, or the writer stopped
    failed: bool

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return value


def parse_run(name: str, text: str) -> Run:
    """One timeline document; ValueError names what is wrong with it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}: not JSON ({err.msg})") from err
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise ValueError(f"{name}: expected an object with an `events` list")
    events = []
    for index, raw in enumerate(document["events"]):
        try:
            try:
                kind = TimelineEvent(raw["event"])
            except ValueError:
                allowed = ", ".join(TimelineEvent)
                raise ValueError(f"event {raw['event']!r} is not one of {allowed}") from None
            events.append(
                Event(str(raw["phase"]), kind, parse_time(raw["time"]), raw.get("detail", {}))
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{name}: event {index}: {err}") from err
    return Run(
        writer=str(document.get("writer", "?")),
        run=str(document.get("run", Path(name).stem)),
        model=str(document.get("model", "")),
        host=str(document.get("host", "")),
        events=tuple(sorted(events, key=lambda e: e.time)),
    )


def _files(source: str, client: Any = None) -> list[tuple[str, Any]]:
    if source.startswith("gs://"):
        bucket, _, prefix = source.removeprefix("gs://").partition("/")
        try:
            if client is None:
                from google.cloud import storage

                client = storage.Client()
            blobs = list(client.list_blobs(bucket, prefix=prefix or None))
        except Exception as err:
            raise TimelineError(f"cannot list {source}: {type(err).__name__}: {err}") from err
        return [(b.name, b.download_as_text) for b in blobs if b.name.endswith(".json")]
    path = Path(source)
    if path.is_file():
        return [(path.name, path.read_text)]
    if not path.is_dir():
        raise TimelineError(f"{source}: no such file or folder")
    return [(p.name, p.read_text) for p in sorted(path.rglob("*.json"))]


def load_with_problems(source: str | Path, client: Any = None) -> tuple[list[Run], list[str]]:
    runs, problems = [], []
    for name, read in _files(str(source), client):
        try:
            runs.append(parse_run(name, read()))
        except Exception as err:
            problems.append(str(err) if isinstance(err, ValueError) else f"{name}: {err}")
    runs.sort(key=lambda r: r.events[0].time if r.events else datetime.max.astimezone())
    return runs, problems


def load(source: str | Path, client: Any = None) -> list[Run]:
    return load_with_problems(source, client)[0]


def phases(run: Run) -> list[Phase]:
    """Start/end pairs of each phase, in start order; a `mark` is a zero-length phase."""
    found: list[Phase] = []
    open_phases: dict[str, datetime] = {}
    for event in run.events:
        if event.event == TimelineEvent.START:
            open_phases[event.phase] = event.time
        elif event.event == TimelineEvent.MARK:
            found.append(Phase(run, event.phase, event.time, event.time, False))
        elif event.phase in open_phases:
            found.append(
                Phase(
                    run,
                    event.phase,
                    open_phases.pop(event.phase),
                    event.time,
                    event.event == TimelineEvent.FAILED,
                )
            )
    found += [Phase(run, name, start, None, False) for name, start in open_phases.items()]
    return sorted(found, key=lambda p: p.start)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def render(runs: list[Run], console: Console) -> None:
    """One table: each phase with its offset from the first event and its duration."""
    every = [p for run in runs for p in phases(run)]
    if not every:
        console.print("no timeline events")
        return
    origin = min(p.start for p in every)
    table = Table(title=f"cold-start timeline (t=0 at {origin.isoformat(timespec='seconds')})")
    for column in ("writer", "run", "phase", "start", "end", "duration"):
        table.add_column(
            column, justify="right" if column in ("start", "end", "duration") else "left"
        )
    for phase in sorted(every, key=lambda p: p.start):
        start = (phase.start - origin).total_seconds()
        if phase.end is None:
            end, duration = "-", "running"
        else:
            end = _clock((phase.end - origin).total_seconds())
            duration = _clock(phase.seconds or 0) + (" FAILED" if phase.failed else "")
        run = phase.run.run if not phase.run.host else f"{phase.run.run} ({phase.run.host})"
        table.add_row(phase.run.writer, run, phase.name, _clock(start), end, duration)
    console.print(table)


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.timeline", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("source", help="gs://BUCKET/timeline/, a folder or one timeline file")
    args = parser.parse_args(argv)
    return show(args.source, console or Console())


def show(source: str, console: Console) -> int:
    """Print the timeline of `source`; 1 when nothing could be read."""
    try:
        runs, problems = load_with_problems(source)
    except TimelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not runs:
        print(f"error: no readable timeline in {source}", file=sys.stderr)
        return 1
    render(runs, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
