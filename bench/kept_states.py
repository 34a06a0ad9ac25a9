"""Built embedded states kept between bench runs (`glimpse bench --keep-states`).

At a million users one strategy's state takes hours to build (bench/README.md), and a
run deletes it at its end. With `--keep-states` each graph's states stay in
`<workdir>/<graph>-kept/`: the plan's time (the plan is deterministic given it, so the
same events, ids and requests come back), and per strategy its data dir and what its
build measured. A later run with the same workdir and settings copies a kept state
instead of building it, and reports the build figures of the run that built it.

A kept state is used only if everything that shaped it is the same: the graph, posts
per user, active share, feed settings and every projection's version. Otherwise the
folder is emptied and the states are built again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

PLAN = "plan.json"


def fingerprint(graph: Any, profile: Any) -> dict[str, Any]:
    from projections.registry import PROJECTIONS

    return {
        "graph": graph.name,
        "description": graph.description,
        "mean_posts": profile.mean_posts,
        "active_share": profile.active_share,
        "feed": profile.feed.env("any"),
        "projections": {p.name: p.version for p in PROJECTIONS},
    }


class KeptStates:
    def __init__(self, folder: Path, shape: dict[str, Any], now_ms: int) -> None:
        """`now_ms` is used only if nothing usable is kept: see `now_ms`."""
        self.folder = folder
        saved = json.loads((folder / PLAN).read_text()) if (folder / PLAN).exists() else None
        if saved is None or saved["fingerprint"] != shape:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            saved = {"fingerprint": shape, "now_ms": now_ms}
            (folder / PLAN).write_text(json.dumps(saved, indent=1))
        self.now_ms: int = saved["now_ms"]  # plan the graph with this time to get the kept events back

    def data_dir(self, strategy: str) -> Path:
        return self.folder / strategy

    def build(self, strategy: str) -> dict[str, Any] | None:
        """What building the kept state measured; None if there is no complete kept state."""
        path = self.folder / f"{strategy}.json"
        return json.loads(path.read_text()) if path.exists() and self.data_dir(strategy).is_dir() else None

    def save(self, strategy: str, build: dict[str, Any]) -> None:
        """Mark the strategy's data dir complete (written last: a build cut short is rebuilt)."""
        (self.folder / f"{strategy}.json").write_text(json.dumps(build, indent=1))
