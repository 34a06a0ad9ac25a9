"""The routers' order in infra/app.py is a speed-up only: every request must reach the same
route (or the same 405 / 404) as with the plain order, commands then queries."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.routing import Match

from infra import app as app_module

PLAIN_ORDER = (*app_module.COMMAND_ROUTERS, *app_module.QUERY_ROUTERS, app_module.ops_routes.router)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _routes(routers: Sequence[APIRouter]) -> list[Any]:
    return [route for router in routers for route in router.routes]


def _selected(routes: list[Any], method: str, path: str) -> tuple[Any, Match]:
    """What Starlette and FastAPI pick: the first full match, else the first partial one (405)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route, match
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial is not None else Match.NONE


def _sample_paths(routes: list[Any]) -> set[str]:
    """Every route's path with its parameters filled in with values that collide with other
    routes' literal segments (`me`, `posts`, ...) as well as with plain ids."""
    templates = [route.path for route in routes]
    literals = {seg for t in templates for seg in t.strip("/").split("/") if seg and not seg.startswith("{")}
    values = ["123", *sorted(literals)]
    paths: set[str] = set()
    for template in templates:
        params = re.findall(r"\{[^}]+\}", template)
        for chosen in itertools.product(values, repeat=min(len(params), 2)):
            path = template
            for param, value in zip(params, chosen, strict=False):
                path = path.replace(param, value, 1)
            paths.add(re.sub(r"\{[^}]+\}", "123", path))
    return paths


def test_the_fast_order_selects_what_the_plain_order_selects() -> None:
    plain, fast = _routes(PLAIN_ORDER), _routes(app_module.ROUTERS)
    assert sorted(map(id, plain)) == sorted(map(id, fast))  # the same routes, only reordered
    paths = _sample_paths(plain)
    assert len(paths) > 50
    for path in sorted(paths):
        for method in METHODS:
            assert _selected(fast, method, path) == _selected(plain, method, path), (method, path)


def test_hot_routes_come_first() -> None:
    first = [route.path for route in _routes(app_module.ROUTERS)[:3]]
    assert "/v1/feed" in first
