"""(to be written) the notifications read model."""

from __future__ import annotations

from events.union import Event
from projections.projection import Projection
from projections.store import Op, ReadModel


def project(event: Event, read: ReadModel) -> list[Op]:
    return []


PROJECTION = Projection("notifications", 1, (), project)
