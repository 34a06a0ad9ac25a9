"""What a projection is: a name, a version, the tables it owns, and a pure function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from events.union import Event
from projections.store import Op, ReadModel, Table

ProjectFn = Callable[[Event, ReadModel], list[Op]]


@dataclass(frozen=True)
class Projection:
    """`project` may read any read model through the port (tables of projections listed
    before it in the registry are already up to date with the event), but writes only
    the tables it owns. Bump `version` whenever the output for the same log changes."""

    name: str
    version: int
    tables: tuple[Table, ...]
    project: ProjectFn
