"""Read-your-writes in the embedded mode: the token is a position in the one SQLite log."""

from __future__ import annotations

from commands.ports import ReadableEventLog
from infra.projector import Projector


class LocalConsistency:
    def __init__(self, log: ReadableEventLog, projector: Projector) -> None:
        self._log = log
        self._projector = projector

    async def wait(self, token: str, timeout: float) -> bool:
        try:
            position = int(token)
        except ValueError:
            return False
        return await self._projector.wait_for(position, timeout)

    def metrics(self) -> dict[str, int]:
        head = self._log.head()
        position = self._projector.position
        return {"event_log_head": head, "projection_position": position, "projection_lag": head - position}
