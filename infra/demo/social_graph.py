"""The socfb-Reed98 friendship graph (see data/PROVENANCE.md), loaded as follows."""

from __future__ import annotations

from importlib import resources


def load_edges(users: int | None = None) -> list[tuple[int, int]]:
    """Undirected edges (a, b) with a > b, restricted to ids below `users`."""
    text = resources.files("infra.demo").joinpath("data/socfb-Reed98.edges").read_text()
    edges = []
    for line in text.splitlines():
        a, b = (int(x) for x in line.split())
        if users is None or (a < users and b < users):
            edges.append((a, b))
    return edges


def node_count(edges: list[tuple[int, int]]) -> int:
    return 1 + max(max(a, b) for a, b in edges) if edges else 0
