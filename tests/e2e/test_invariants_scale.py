"""The privacy property of test_invariants.py, against the scale stack.

The same random histories and the same independent model, but every request goes
over HTTP to API processes whose writes pass through Kafka and whose reads come
from Cassandra and Redis after the projection worker applied them. Each example
uses fresh usernames on the one session-wide stack; reads carry the merged
consistency token of every write so far, as one client session would.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings

from tests.apphelpers import User
from tests.e2e.conftest import ScaleStack
from tests.e2e.http_clients import Client, Tokens
from tests.e2e.test_invariants import N_USERS, Model, World, histories

_examples = itertools.count()


class ScaleWorld(World):
    def __init__(self, base: str) -> None:  # not super().__init__: that builds an embedded app
        self.client: Any = Client(base, Tokens())
        self.container = None
        example = next(_examples)
        self.users = [User(self.client, f"s{example}x{i}") for i in range(N_USERS)]
        self.m = Model()
        self.post_ids = []
        self.story_ids = []
        self.requests_sent = []
        self._media = 0


@settings(max_examples=8)
@given(histories)
def test_no_read_path_shows_what_the_policy_forbids_on_the_scale_stack(
    scale_stack: ScaleStack, history: list[tuple[str, Any]]
) -> None:
    world = ScaleWorld(scale_stack.combined)
    for cmd in history:
        world.run(cmd)
    world.check_reads()
