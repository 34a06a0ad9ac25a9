"""The FastAPI application class, with a short way in for requests that need nothing else.

Before a route's handler runs, a request passes FastAPI's middleware (error pages,
telemetry, body limits, exception handlers, an exit stack for uploaded files) and its
router, which tries the routes one by one through several layers of included-router
bookkeeping, then two more exit stacks around the handler: ~45 µs of a ~110 µs query,
nearly all of it doing nothing for our routes.

`FastApp.__call__` serves an HTTP request itself when it can show that FastAPI would
do exactly the same:
- the app is plain: no user middleware, no body-size limits, no root path, telemetry
  not recording (FastAPI's own check, made per request as FastAPI makes it);
- the route FastAPI would pick is found the way its router finds it: the first route,
  in the app's order, whose path pattern matches and which takes the method; a path
  that only partly matches, or matches a route of another kind, goes to FastAPI;
- that route has a compiled handler (infra/http/fast_routes.py) and the request is its
  plain case (`Compiled.prepare`; otherwise the request goes to FastAPI from the start,
  its body replayed if it was read).
It then runs the compiled handler inside the two layers whose work can show in an
answer, the same Starlette classes FastAPI stacks with the same handlers: exception
handlers (`ExceptionMiddleware`: our error envelope) and the last-resort 500
(`ServerErrorMiddleware`), with the telemetry layer between them as FastAPI has it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.http.fast_routes import Compiled, Fallback, Unsupported

log = logging.getLogger(__name__)

try:  # the FastAPI internals this mirrors (see infra/http/fast_routes.py)
    from fastapi.routing import _iter_routes_with_context
    from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware

    AVAILABLE = True
except ImportError:  # pragma: no cover - another FastAPI: every request takes FastAPI's way
    AVAILABLE = False

_HOT = "glimpse.fast_app"  # scope key: what the inner app runs


@dataclass(frozen=True, slots=True)
class _Candidate:
    regex: re.Pattern[str]
    methods: frozenset[str] | None
    convertors: dict[str, Any]
    route: Any  # as the router matches it: the route's effective (included) form
    original: Any  # as the router names it in the scope
    compiled: Compiled | None  # None: FastAPI serves it


def _candidates(app: FastAPI) -> list[_Candidate] | None:
    """The app's routes in the order its router tries them, or None if it has a kind of route
    whose matching this does not mirror (mounts, hosts, frontend groups)."""
    out: list[_Candidate] = []
    for route, context in _iter_routes_with_context(app.router.routes):
        effective: Any = context if context is not None else route
        if context is not None and context.starlette_route is not None:
            effective = context.starlette_route
        if isinstance(route, WebSocketRoute):
            continue  # never matches an HTTP request
        if not isinstance(route, Route):
            return None
        compiled = None
        if isinstance(route, APIRoute) and effective.max_body_size is None:
            try:
                compiled = Compiled(effective, None)
            except Unsupported:
                compiled = None
        methods = effective.methods
        out.append(
            _Candidate(
                effective.path_regex,
                frozenset(methods) if methods else None,
                effective.param_convertors,
                effective,
                route,
                compiled,
            )
        )
    return out


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body, already read, given back first."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class FastApp(FastAPI):
    _fast: tuple[list[_Candidate], ASGIApp] | bool | None = False  # False: not built yet; None: off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._fast is not None:
            found = self._found(scope)
            if found is not None:
                candidate, path_params = found
                await self._serve(candidate, path_params, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _found(self, scope: Scope) -> tuple[_Candidate, dict[str, Any]] | None:
        """The candidate FastAPI's router would pick, if it is one to serve here."""
        fast = self._fast
        if fast is False:
            fast = self._fast = self._build()
        if (
            fast is None
            or self.user_middleware
            or self.root_path
            or scope.get("root_path")
            or "fastapi.telemetry" in scope
            or self._native_telemetry.enabled()
        ):
            return None
        assert isinstance(fast, tuple)
        path, method = scope["path"], scope["method"]
        for candidate in fast[0]:
            match = candidate.regex.match(path)
            if match is None:
                continue
            if candidate.methods is not None and method not in candidate.methods:
                return None  # a partial match: FastAPI looks further and answers (405, or a later route)
            if candidate.compiled is None or not candidate.compiled.plain():
                return None
            params = {k: candidate.convertors[k].convert(v) for k, v in match.groupdict().items()}
            return candidate, params
        return None

    def _build(self) -> tuple[list[_Candidate], ASGIApp] | None:
        if not AVAILABLE or self.max_body_size is not None or not hasattr(self, "_native_telemetry"):
            return None
        candidates = _candidates(self)
        if candidates is None:
            return None
        # The layers of `FastAPI.build_middleware_stack` that act on a routed request's answer.
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        inner: ASGIApp = ExceptionMiddleware(_run_prepared, handlers=handlers, debug=self.debug)
        stack = ServerErrorMiddleware(ExceptionTelemetryMiddleware(inner), handler=error_handler, debug=self.debug)
        return candidates, stack

    async def _serve(
        self, candidate: _Candidate, path_params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        compiled = candidate.compiled
        assert compiled is not None and isinstance(self._fast, tuple)
        routed = {
            **scope,
            "app": self,
            "router": self.router,
            "endpoint": candidate.route.endpoint,
            "path_params": {**scope.get("path_params", {}), **path_params},
            "route": candidate.original,
        }
        request = Request(routed, receive, send)
        prepared: Any
        try:
            prepared = await compiled.prepare(request)
        except Fallback as fallback:  # nothing ran: FastAPI serves the request from the start
            body = fallback.body
            await super().__call__(scope, receive if body is None else _replaying(body, receive), send)
            return
        except Exception as exc:  # reading the body failed: raised where FastAPI raises it, below
            prepared = exc
        routed[_HOT] = (compiled, request, prepared)
        await self._fast[1](routed, receive, send)


async def _run_prepared(scope: Scope, receive: Receive, send: Send) -> None:
    compiled, request, prepared = scope[_HOT]
    if isinstance(prepared, Exception):
        raise prepared
    response = await compiled.run(request, *prepared)
    await response(scope, receive, send)
