"""Removing orphan objects: files that a save wrote but whose database commit never happened.

A save writes its objects first and its rows second, so a failure in between
leaves objects that no row refers to. `sweep` removes them once they are older
than a cutoff, which must be longer than any save takes: a younger orphan may
belong to a save that is about to commit.

Only keys laid out as `<type folder>/<content id>/<path>` are considered; anything
else under the storage location is not agentflows' and is left alone. The rows
are read after the objects are listed, and each orphan is looked at again just
before it is removed, so a save that rewrites and commits the same content
meanwhile keeps its objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agentflows.tasks.normalize import ID_LENGTH, TYPE_FOLDERS
from agentflows.tasks.storage.objects import ObjectInfo, ObjectStore
from agentflows.tasks.storage.records import ContentRepository

_ID = re.compile(rf"^[0-9a-f]{{{ID_LENGTH}}}$")


@dataclass
class SweepReport:
    """What a sweep found and removed (or, in a dry run, would remove)."""

    removed: list[str] = field(default_factory=list)
    kept_recent: int = 0
    """Orphans younger than the cutoff."""
    referenced: int = 0
    """Objects of stored contents."""
    foreign: int = 0
    """Objects outside agentflows' layout, never touched."""


def sweep(objects: ObjectStore, records: ContentRepository, older_than: timedelta, dry_run: bool) -> SweepReport:
    """Remove the objects no content row refers to that are older than `older_than`."""
    cutoff = datetime.now(UTC) - older_than
    listed = list(objects.objects())
    referenced = records.content_ids()  # read after listing: a save committed meanwhile keeps its objects
    report = SweepReport()
    orphans: list[tuple[str, ObjectInfo]] = []
    for info in listed:
        content_id = content_id_of(info.key)
        if content_id is None:
            report.foreign += 1
        elif content_id in referenced:
            report.referenced += 1
        elif info.modified > cutoff:
            report.kept_recent += 1
        else:
            orphans.append((content_id, info))
    if dry_run:
        report.removed = [info.key for _, info in orphans]
        return report
    _remove(objects, records, orphans, cutoff, report)
    return report


def _remove(
    objects: ObjectStore,
    records: ContentRepository,
    orphans: Iterable[tuple[str, ObjectInfo]],
    cutoff: datetime,
    report: SweepReport,
) -> None:
    """Delete each orphan unless, looked at again now, it is referenced or was just rewritten."""
    orphans = list(orphans)
    now_referenced = records.content_ids(among={content_id for content_id, _ in orphans})
    for content_id, info in orphans:
        if content_id in now_referenced:
            report.referenced += 1
        elif (modified := objects.modified(info.key)) is not None and modified > cutoff:
            report.kept_recent += 1
        else:
            objects.delete(info.key)
            report.removed.append(info.key)


def content_id_of(key: str) -> str | None:
    """The content id in a key laid out as `<type folder>/<id>/<path>`, else None."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] in TYPE_FOLDERS.values() and _ID.match(parts[1]):
        return parts[1]
    return None
