"""The social graphs the feed benchmark runs on, and the posts each user has written.

- `reed98()`: the socfb-Reed98 friendship graph shipped in infra/demo/data (962
  users); each friendship becomes two follows, the DeathStarBench way.
- `synthetic(n)`: heavy-tailed follower counts. Each user follows a number of
  others drawn from a geometric distribution (mean `mean_following`); a share
  `preferential` of those picks goes to users weighted by Zipf rank (weight 1/rank),
  the rest uniformly at random. The Zipf picks make celebrities: with the defaults
  the top account is followed by roughly a third of all users at every size, and
  follower counts have a power-law tail.

Users are 0..n-1 (index = position in every list here); `active` is the sample of
users who send requests during the run (a configurable share). Everything is
deterministic for a seed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field

from infra.demo.social_graph import load_edges, node_count


@dataclass
class Graph:
    name: str
    users: int
    following: list[list[int]]  # following[u]: whom u follows
    followers: list[list[int]] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.followers:
            self.followers = [[] for _ in range(self.users)]
            for u, followees in enumerate(self.following):
                for v in followees:
                    self.followers[v].append(u)

    @property
    def edges(self) -> int:
        return sum(len(f) for f in self.following)

    def follower_stats(self, celebrity_threshold: int) -> dict[str, float | int]:
        counts = sorted(len(f) for f in self.followers)
        n = len(counts)
        return {
            "users": self.users,
            "follows": self.edges,
            "mean_followers": round(sum(counts) / n, 2) if n else 0,
            "median_followers": counts[n // 2] if n else 0,
            "p99_followers": counts[min(n - 1, int(n * 0.99))] if n else 0,
            "max_followers": counts[-1] if n else 0,
            "celebrities": sum(1 for c in counts if c > celebrity_threshold),
            "celebrity_threshold": celebrity_threshold,
        }


def reed98() -> Graph:
    edges = load_edges()
    n = node_count(edges)
    following: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        following[a].append(b)
        following[b].append(a)
    return Graph("reed98", n, following, description="socfb-Reed98 friendships as mutual follows")


def synthetic(
    n: int,
    *,
    seed: int = 7,
    mean_following: float = 12.0,
    max_following: int = 2000,
    preferential: float = 0.2,
) -> Graph:
    if n < 2:
        raise ValueError("a graph needs at least two users")
    rng = random.Random(seed)
    # Zipf rank weights over a random permutation, so celebrities are not user 0, 1, 2...
    ranks = list(range(n))
    rng.shuffle(ranks)
    cumulative = list(itertools.accumulate(1.0 / (ranks[u] + 1) for u in range(n)))
    total = cumulative[-1]
    p = 1.0 / mean_following  # geometric on 1, 2, ... with this mean
    log_q = math.log(1.0 - p) if p < 1 else -math.inf
    following: list[list[int]] = []
    for u in range(n):
        want = 1 if p >= 1 else 1 + int(math.log(1.0 - rng.random()) / log_q)
        want = min(want, max_following, n - 1)
        chosen: set[int] = set()
        tries = 0
        while len(chosen) < want and tries < want * 4:
            tries += 1
            if rng.random() < preferential:
                v = bisect.bisect_left(cumulative, rng.random() * total)
                v = min(v, n - 1)
            else:
                v = rng.randrange(n)
            if v != u:
                chosen.add(v)
        following.append(sorted(chosen))
    return Graph(
        f"synthetic-{_short(n)}",
        n,
        following,
        description=(
            f"synthetic, {n} users, geometric following (mean {mean_following:g}), "
            f"{preferential:.0%} of follows preferential by Zipf rank (celebrities)"
        ),
    )


def _short(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def by_name(name: str, seed: int = 7, mean_following: float = 12.0) -> Graph:
    """`reed98`, or `synthetic-<n>` / a bare size like `10k`, `100000`, `1m`."""
    if name == "reed98":
        return reed98()
    size = name.removeprefix("synthetic-").lower()
    multiplier = 1
    if size.endswith("k"):
        size, multiplier = size[:-1], 1000
    elif size.endswith("m"):
        size, multiplier = size[:-1], 1_000_000
    if not size.isdigit():
        raise ValueError(f"unknown graph {name!r}: use reed98 or synthetic-<users> (e.g. synthetic-10k)")
    return synthetic(int(size) * multiplier, seed=seed, mean_following=mean_following)


def posts_per_user(users: int, mean_posts: float, seed: int = 11, cap: int = 60) -> list[int]:
    """How many posts each user wrote before the run (exponential, so a few write a lot)."""
    rng = random.Random(seed)
    return [min(cap, round(rng.expovariate(1.0 / mean_posts))) if mean_posts > 0 else 0 for _ in range(users)]


def active_sample(users: int, share: float, seed: int = 13) -> list[int]:
    """The users who send requests during the run (at least two)."""
    rng = random.Random(seed)
    k = max(2, min(users, round(users * share)))
    return sorted(rng.sample(range(users), k))
