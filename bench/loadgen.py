"""Open-loop load: requests at fixed intended times, latency measured from those times.

A closed loop (send, wait, send) slows down when the server does and hides the
queueing it causes (coordinated omission). Here request i is due at
`start + i / rate` whatever happened before; a response's latency is its
completion minus its due time, so time spent waiting for a connection, or behind
a slow generator, counts against the system. The generator's own lag (send time
minus due time) is reported separately, so a generator that could not keep up is
visible rather than silently folded in.

The DeathStarBench social-network mix: 60 % home-timeline reads, 30 % user-timeline
reads (10-item pages at a random offset 0-100), 10 % compose-post (a caption with
@mentions). Offsets become cursors from what the bench knows about the state it
built (`State.feed_ids`): the cursor of offset k is the id of the k-th newest
entry, exactly what a client paging down would hold.

Freshness: after a new post is accepted (its 201 arrives), a probe polls the home
feed of one of the author's active followers until the post is on its first page;
the time from acceptance to the response that shows it is the post's freshness
(an upper bound: the poll interval is reported with it).
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.state import WORDS, State
from bench.stats import summary
from infra.http.paging import encode_cursor

MIX = (("home_feed", 0.6), ("user_posts", 0.3), ("new_post", 0.1))
PAGE = 10
MAX_OFFSET = 100


@dataclass
class Request:
    op: str
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    author: int | None = None  # user index of a new post's author


@dataclass
class Sample:
    due: float
    sent: float
    done: float
    ok: bool


@dataclass
class Phase:
    """What one stretch of load recorded, by operation."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    errors: dict[str, dict[str, int]] = field(default_factory=dict)
    freshness: list[float] = field(default_factory=list)
    freshness_timeouts: int = 0
    freshness_skipped: int = 0
    probe_requests: int = 0
    created_posts: list[tuple[int, int]] = field(default_factory=list)  # (post id, author index)

    def add(self, op: str, sample: Sample) -> None:
        self.samples.setdefault(op, []).append(sample)

    def error(self, op: str, what: str) -> None:
        counts = self.errors.setdefault(op, {})
        counts[what] = counts.get(what, 0) + 1


class DsbMix:
    """Makes the next request of the mix for a random active user."""

    def __init__(self, state: State, active: list[int], tokens: dict[int, str], seed: int = 17) -> None:
        self.state = state
        self.active = active
        self.tokens = tokens
        self.rng = random.Random(seed)
        self.ops = [name for name, _ in MIX]
        self.weights = [w for _, w in MIX]
        # Freshness probes read the feed of an author's follower who is active (and so pushed to).
        self.active_followers: dict[int, list[int]] = {}
        for u in active:
            for v in state.graph.following[u]:
                self.active_followers.setdefault(v, []).append(u)

    def auth(self, user: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def next(self) -> Request:
        op = self.rng.choices(self.ops, self.weights)[0]
        if op == "home_feed":
            return self.home_feed(self.rng.choice(self.active), self.rng.randint(0, MAX_OFFSET))
        if op == "user_posts":
            return self.user_posts(self.rng.choice(self.active), self.rng.randrange(self.state.graph.users))
        return self.new_post(self.rng.choice(self.active))

    def feed_cursor(self, user: int, offset: int) -> tuple[int, int | None]:
        """(user id, the post id a page at `offset` starts below, or None for the first page)."""
        ids = self.state.feed_ids(user)
        before = ids[min(offset, len(ids)) - 1] if offset and ids else None
        return self.state.user_ids[user], before

    def home_feed(self, user: int, offset: int) -> Request:
        _, before = self.feed_cursor(user, offset)
        params = {"limit": str(PAGE)}
        if before is not None:
            params["cursor"] = encode_cursor(before)
        return Request("home_feed", "GET", "/v1/feed", params, self.auth(user))

    def user_posts(self, viewer: int, target: int) -> Request:
        posts = self.state.posts[target]
        params = {"limit": str(PAGE)}
        offset = self.rng.randint(0, MAX_OFFSET)
        if offset and posts:
            params["cursor"] = encode_cursor(posts[-min(offset, len(posts))])
        return Request("user_posts", "GET", f"/v1/users/{self.state.username(target)}/posts", params, self.auth(viewer))

    def new_post(self, author: int) -> Request:
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 9)))
        followees = self.state.graph.following[author]
        mentions = self.rng.sample(followees, min(len(followees), self.rng.randint(1, 2))) if followees else []
        caption = " ".join([words, *(f"@{self.state.username(v)}" for v in mentions)])
        body = {"caption": caption, "media_ids": [str(self.state.media_ids[author])], "audience": "public"}
        return Request("new_post", "POST", "/v1/posts", {}, self.auth(author), body, author=author)

    def probe_follower(self, author: int) -> int | None:
        followers = self.active_followers.get(author)
        return self.rng.choice(followers) if followers else None


@dataclass
class LoadConfig:
    rate: float  # requests per second of the mix
    warmup: float  # seconds, recorded apart and left out of the results
    duration: float  # measured seconds
    connections: int = 64
    timeout: float = 10.0
    probe_interval: float = 0.05
    probe_timeout: float = 10.0
    max_probes: int = 2  # freshness probes in flight at once (each polls one follower's feed)


async def run_load(
    base: str,
    make: Callable[[], Request],
    config: LoadConfig,
    mix: DsbMix | None = None,
) -> tuple[Phase, Phase, dict[str, float]]:
    """(warm-up phase, measured phase, generator figures). `mix` enables freshness probes."""
    warm, measured = Phase(), Phase()
    connector = aiohttp.TCPConnector(limit=config.connections, limit_per_host=config.connections)
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    loop = asyncio.get_running_loop()
    probes = asyncio.Semaphore(config.max_probes)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def fire(req: Request, due: float, phase: Phase) -> None:
            sent = loop.time()
            ok, body = False, None
            try:
                async with session.request(
                    req.method, req.path, params=req.params, headers=req.headers, json=req.body
                ) as r:
                    raw = await r.read()
                    ok = r.status < 400
                    if not ok:
                        phase.error(req.op, str(r.status))
                    elif req.op == "new_post":
                        body = orjson.loads(raw)
            except (TimeoutError, aiohttp.ClientError) as exc:
                phase.error(req.op, type(exc).__name__)
            done = loop.time()
            phase.add(req.op, Sample(due, sent, done, ok))
            if ok and body is not None and req.author is not None:
                post_id = int(body["id"])
                phase.created_posts.append((post_id, req.author))
                if mix is not None and phase is measured:
                    follower = mix.probe_follower(req.author)
                    if follower is None or probes.locked():
                        phase.freshness_skipped += 1
                    else:
                        await probe(follower, post_id, done, phase)

        async def probe(follower: int, post_id: int, accepted: float, phase: Phase) -> None:
            assert mix is not None
            wanted = str(post_id)
            async with probes:
                deadline = accepted + config.probe_timeout
                while True:
                    phase.probe_requests += 1
                    try:
                        async with session.get(
                            "/v1/feed", params={"limit": str(PAGE)}, headers=mix.auth(follower)
                        ) as r:
                            page = await r.json() if r.status == 200 else {"items": []}
                    except (TimeoutError, aiohttp.ClientError):
                        page = {"items": []}
                    now = loop.time()
                    if any(item.get("id") == wanted for item in page.get("items", [])):
                        phase.freshness.append(now - accepted)
                        return
                    if now >= deadline:
                        phase.freshness_timeouts += 1
                        return
                    await asyncio.sleep(config.probe_interval)

        # The bench holds the whole state (hundreds of thousands of events): a garbage
        # collection over it would freeze this loop for tens to hundreds of ms and show up as
        # latency. The state is frozen out of the collector's sight and collection is off for
        # the run (a minute of cyclic garbage is small); any pause that still happens is reported.
        gc.collect()
        gc.freeze()
        gc.disable()
        pauses: list[float] = []
        began: list[float] = []

        def on_gc(phase_name: str, _info: dict[str, int]) -> None:
            if phase_name == "start":
                began.append(time.perf_counter())
            elif began:
                pauses.append(time.perf_counter() - began.pop())

        gc.callbacks.append(on_gc)
        cpu0, wall0 = time.process_time(), time.monotonic()
        start = loop.time() + 0.05
        warm_end = start + config.warmup
        end = warm_end + config.duration
        cpu_measure0 = None
        i = 0
        while True:
            due = start + i / config.rate
            if due >= end:
                break
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            if cpu_measure0 is None and due >= warm_end:
                cpu_measure0 = (time.process_time(), time.monotonic())
            phase = warm if due < warm_end else measured
            task = asyncio.create_task(fire(make(), due, phase))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        cpu1, wall1 = time.process_time(), time.monotonic()
        if tasks:
            await asyncio.wait(set(tasks), timeout=config.timeout + config.probe_timeout + 5)
        gc.callbacks.remove(on_gc)
        gc.enable()
        gc.unfreeze()
    c0, w0 = cpu_measure0 or (cpu0, wall0)
    generator = {
        "cpu_percent_of_one_core": round(100 * (cpu1 - c0) / max(1e-9, wall1 - w0), 1),
        "scheduled": i,
        "gc_pauses": len(pauses),
        "gc_pause_ms_max": round(1000 * max(pauses, default=0.0), 1),
    }
    return warm, measured, generator


def report(phase: Phase, duration: float, rate: float) -> dict[str, Any]:
    """Per-operation latency (from due time), throughput, errors; generator lag; freshness."""
    ops: dict[str, Any] = {}
    all_ok = 0
    lags: list[float] = []
    for op in [name for name, _ in MIX] + sorted(set(phase.samples) - {n for n, _ in MIX}):
        samples = phase.samples.get(op, [])
        ok = [s for s in samples if s.ok]
        all_ok += len(ok)
        lags += [s.sent - s.due for s in samples]
        ops[op] = {
            "requests": len(samples),
            "errors": len(samples) - len(ok),
            "error_kinds": phase.errors.get(op, {}),
            "throughput_per_second": round(len(ok) / duration, 1),
            "latency_ms": summary([1000 * (s.done - s.due) for s in ok]),
            "service_ms": summary([1000 * (s.done - s.sent) for s in ok]),
        }
    total = sum(len(v) for v in phase.samples.values())
    return {
        "target_rate": rate,
        "requests": total,
        "throughput_per_second": round(all_ok / duration, 1),
        "errors": total - all_ok,
        "operations": ops,
        "generator_lag_ms": summary([1000 * x for x in lags]),
        "freshness_ms": summary([1000 * x for x in phase.freshness]),
        "freshness_samples": len(phase.freshness),
        "freshness_timeouts": phase.freshness_timeouts,
        "freshness_not_probed": phase.freshness_skipped,
        "probe_requests_per_second": round(phase.probe_requests / duration, 1),
    }


def latencies_ms(phase: Phase, op: str) -> list[float]:
    return [1000 * (s.done - s.due) for s in phase.samples.get(op, []) if s.ok]
