"""The in-process pub/sub passes the PubSub contract."""

from __future__ import annotations

from typing import Any

from infra.pubsub import InProcessPubSub
from tests.contracts.pubsub_contract import PubSubContract


class TestInProcessPubSub(PubSubContract):
    def make(self, queue_size: int = 256) -> Any:
        return InProcessPubSub(queue_size=queue_size)
