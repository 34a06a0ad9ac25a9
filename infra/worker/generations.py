"""The projection worker's side of blue/green switches (docs/replay.md, "The scale mode").

Wires, for `build_worker`: the router that keeps the worker's `CassandraReadModel` on
the active generation (infra/cassandra/generations.py), the Redis cache listeners keyed
by that generation, the pause gate a replay uses to stop the worker while it switches
(infra/worker/pause.py), and the guard that refuses to record a batch written to a
generation that is no longer active.

After a pause the worker re-reads the registry: if the epoch moved, its read model now
writes the new tables, the batch overlay forgets every row it kept from the old ones, and
the cache listeners use the new key prefix; in any case it reloads the group's positions,
which the replay has set to what the rebuilt tables cover (the applier skips those records).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.cassandra.generations import CassandraRegistry, GenerationRouter
from infra.cassandra.readmodel import CassandraReadModel
from infra.cassandra.worker_control import CassandraWorkerControl
from infra.redis_adapters.generation_caches import GenerationListeners
from infra.settings import Settings
from infra.worker.applier import BatchApplier
from infra.worker.overlay import BatchOverlay
from infra.worker.pause import EpochGuardedPositions, PositionStore, WorkerGate
from projections.projection import Projection


class WorkerGenerations:
    def __init__(
        self,
        session: Any,
        settings: Settings,
        read: CassandraReadModel,
        projections: Sequence[Projection],
        client: Any,
    ) -> None:
        self._settings = settings
        self.registry = CassandraRegistry(session, settings.cassandra_keyspace)
        self.control = CassandraWorkerControl(session, settings.cassandra_keyspace)
        self.caches = GenerationListeners(client, settings)
        self.router = GenerationRouter(self.registry, projections, [read], [self.caches.switch])
        self.router.refresh()  # before the first batch: a replay may have switched while no worker ran

    def guard(self, positions: PositionStore) -> EpochGuardedPositions:
        return EpochGuardedPositions(positions, self.registry.epoch, lambda: self.router.epoch)

    def gate(self, applier: BatchApplier, overlay: BatchOverlay | None) -> WorkerGate:
        def on_resume() -> None:
            if self.router.refresh() and overlay is not None:
                overlay.forget()  # rows it kept were read from the old tables
            applier.load_positions()

        return WorkerGate(
            self.control,
            self._settings.worker_group,
            positions=lambda: applier.positions,
            on_resume=on_resume,
        )
