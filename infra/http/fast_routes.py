"""A cheaper way through FastAPI's dependency resolution, with the same answers.

For every request FastAPI walks the route's dependency tree (`solve_dependencies`):
for each node it recomputes cache keys, scope flags and each parameter's shape
(sequence? JSON? a parameter model?) before it validates anything. For our routes
(a handful of `async def` dependencies: the container, the viewer, the consistency
header) that bookkeeping cost more than the rest of a small query: ~100 µs of the
~240 µs a user-posts page took.

`FastRoute.get_route_handler` keeps FastAPI's own handler for the route and, when the
route's shape allows it, puts a compiled one in front of it. The compiled handler
does what `solve_dependencies` does for that tree, decided once per route instead of
once per request:

1. it reads and validates every parameter of the whole tree (path, query, headers, the
   JSON body) with the same pydantic fields, aliases and defaults FastAPI uses;
2. if all of them are valid, it calls the dependencies in FastAPI's order, with its
   per-request cache, then the endpoint, and serialises the result as FastAPI does
   (`serialize_response` with the route's response model).

Whenever a request is anything but the plain case, it hands the request, untouched,
to FastAPI's handler before anything has run: a parameter that does not validate (the
422 and its message come from FastAPI), a body that is not `application/json` or not
JSON, dependency overrides (tests), or telemetry being recorded. A route whose shape
it does not know (sync or generator dependencies, forms, streams, cookies, security
scopes, `Response`/`BackgroundTasks` parameters, parameter models, sequences) keeps
FastAPI's handler alone. So an answer never depends on which path served it; only
its cost does. tests/e2e/test_fast_path_api.py compares the two, request by request.
`Compiled` also serves infra/http/fast_app.py, which skips the middleware and router
layers in front of the handler the same way.

It mirrors FastAPI internals (of the installed version); if those move, the import
fails and `FastRoute` keeps FastAPI's handler for every route.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from infra.http.fast_json import exact_dumper

log = logging.getLogger(__name__)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

try:  # FastAPI internals the compiled handler mirrors
    from fastapi._body_limit import get_body_limit_error
    from fastapi._compat import Undefined, field_annotation_is_sequence, lenient_issubclass
    from fastapi.datastructures import DefaultPlaceholder
    from fastapi.dependencies.models import (
        Dependant,
        _get_cache_key,
        _is_async_gen_callable,
        _is_coroutine_callable,
        _is_gen_callable,
    )
    from fastapi.dependencies.utils import (
        _get_form_models,
        _get_param_aliases,
        _get_param_model,
        _is_json_field,
        _should_embed_body_fields,
    )
    from fastapi.routing import _extract_endpoint_context, serialize_response
    from fastapi.sse import EventSourceResponse
    from fastapi.telemetry._api import _get_request_telemetry
    from fastapi.utils import is_body_allowed_for_status_code
    from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

    AVAILABLE = True
except ImportError:  # pragma: no cover - another FastAPI: keep its own handlers
    AVAILABLE = False

_PATH, _QUERY, _HEADER = 0, 1, 2
_IMMUTABLE = (type(None), bool, int, float, str, bytes)


class Unsupported(Exception):
    """The route has something the compiled handler does not do: FastAPI's handler serves it."""


class Fallback(Exception):
    """This request is not the plain case: FastAPI's handler serves it. Nothing has run yet;
    `body` is what was read of the request's body (None: nothing), for a caller that has to
    hand the request on from the start."""

    def __init__(self, body: bytes | None = None) -> None:
        super().__init__()
        self.body = body


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    field: Any  # fastapi ModelField
    source: int
    aliases: tuple[str, ...]  # the request keys FastAPI tries, in its order
    loc: str
    required: bool
    default: Any
    copy_default: bool
    validate_default: bool

    def value(self, received: Any) -> Any:
        aliases = self.aliases
        alias = aliases[0]
        if len(aliases) > 1:
            alias = next((a for a in aliases if a in received), alias)
        value = received.get(alias)
        if value is None:
            if self.required:
                raise Fallback
            value = copy.deepcopy(self.default) if self.copy_default else self.default
            if not self.validate_default:
                return value
        valid, errors = self.field.validate(value, {}, loc=(self.loc, alias))
        if errors:
            raise Fallback
        return valid


@dataclass(frozen=True, slots=True)
class _Node:
    """One dependency (or the endpoint): what to call, with which parameters and sub-dependencies."""

    call: Callable[..., Any]
    name: str | None  # the argument it fills in its parent
    cache_key: Any
    use_cache: bool
    subs: tuple[_Node, ...]
    params: tuple[_Param, ...]
    request_names: tuple[str, ...]


def _params(dependant: Dependant) -> tuple[_Param, ...]:
    out = []
    for source, fields in (
        (_PATH, dependant.path_params),
        (_QUERY, dependant.query_params),
        (_HEADER, dependant.header_params),
    ):
        for field in fields:
            info = field.field_info
            if (
                not isinstance(info, params.Param)
                or _get_param_model(field) is not None
                or _is_json_field(field)
                or field_annotation_is_sequence(info.annotation)
            ):
                raise Unsupported(f"parameter {field.name}")
            if info.default_factory is not None:
                raise Unsupported(f"parameter {field.name}: a default factory")
            required = info.is_required()
            default = None if required else field.default
            out.append(
                _Param(
                    name=field.name,
                    field=field,
                    source=source,
                    aliases=tuple(request_key for _, request_key in _get_param_aliases(field)),
                    loc=info.in_.value,
                    required=required,
                    default=default,
                    copy_default=not isinstance(default, _IMMUTABLE),
                    validate_default=bool(info.validate_default),
                )
            )
    return tuple(out)


def _node(dependant: Dependant, *, root: bool) -> _Node:
    call = dependant.call
    if call is None or not _is_coroutine_callable(call) or _is_gen_callable(call) or _is_async_gen_callable(call):
        raise Unsupported("not an async function")
    if (
        dependant.cookie_params
        or (dependant.body_params and not root)
        or dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.concurrency is not None
    ):
        raise Unsupported("a parameter kind the compiled handler does not fill")
    names = tuple(n for n in (dependant.request_param_name, dependant.http_connection_param_name) if n is not None)
    return _Node(
        call=call,
        name=dependant.name,
        cache_key=None if root else _get_cache_key(dependant=dependant),
        use_cache=dependant.use_cache,
        subs=tuple(_node(sub, root=False) for sub in dependant.dependencies),
        params=_params(dependant),
        request_names=names,
    )


# Where a call's argument comes from: an earlier call's result, a validated parameter, the body, the request.
_RESULT, _PARAM, _BODY, _REQUEST = 0, 1, 2, 3
Args = tuple[tuple[str, int, int], ...]


class _Schedule:
    """The tree's calls in the order `solve_dependencies` makes them, found once: which
    call runs (a cached dependency runs once per request, as FastAPI's cache decides, and
    that depends on the tree alone) and where each argument comes from."""

    def __init__(self, root: _Node) -> None:
        self.params: list[_Param] = []
        self.steps: list[tuple[Callable[..., Any], Args]] = []
        self._cache: dict[Any, tuple[int, int]] = {}
        self.endpoint = root.call
        self.endpoint_args = self._args(root)

    def _args(self, node: _Node) -> Args:
        values: dict[str, tuple[int, int]] = {}
        for sub in node.subs:
            sub_args = self._args(sub)
            key = sub.cache_key
            if sub.use_cache and key in self._cache:
                solved = self._cache[key]
            else:
                self.steps.append((sub.call, sub_args))
                solved = (_RESULT, len(self.steps) - 1)
            if sub.name is not None:
                values[sub.name] = solved
            if key not in self._cache:
                self._cache[key] = solved
        for p in node.params:
            self.params.append(p)
            values[p.name] = (_PARAM, len(self.params) - 1)
        for name in node.request_names:
            values[name] = (_REQUEST, 0)
        return tuple((name, kind, i) for name, (kind, i) in values.items())


def _query(request: Request) -> Any:
    """The query parameters as starlette's `QueryParams` reads them (`parse_qsl`, keeping blank
    values; the last of a repeated name wins), without it when nothing needs unquoting."""
    raw: bytes = request.scope["query_string"]
    if b"%" in raw or b"+" in raw:
        return request.query_params
    found: dict[str, str] = {}
    if raw:
        for piece in raw.decode("latin-1").split("&"):
            if piece:
                name, _, value = piece.partition("=")
                found[name] = value
    return found


class Compiled:
    """A route's compiled handler (see the module docstring)."""

    def __init__(self, route: Any, standard: Handler | None) -> None:
        if not AVAILABLE:
            raise Unsupported("FastAPI internals moved")
        dependant: Dependant = route.dependant
        response_class = route.response_class
        actual_class = response_class.value if isinstance(response_class, DefaultPlaceholder) else response_class
        if (
            getattr(route, "is_json_stream", False)
            or getattr(route, "stream_item_field", None) is not None
            or lenient_issubclass(actual_class, EventSourceResponse)
        ):
            raise Unsupported("a streaming route")
        schedule = _Schedule(_node(dependant, root=True))
        self.params = tuple(schedule.params)
        self.steps = tuple(schedule.steps)
        self.endpoint = schedule.endpoint
        self.endpoint_args = schedule.endpoint_args
        self.body_param = None
        if route.body_field is not None:
            body_params = dependant.body_params
            if (
                len(body_params) != 1
                or route._embed_body_fields
                or _should_embed_body_fields(body_params)
                or _get_form_models(body_params[0])
                or isinstance(route.body_field.field_info, params.Form)
            ):
                raise Unsupported("a form or embedded body")
            self.body_param = body_params[0]  # FastAPI validates with this one, not route.body_field
            self.endpoint_args += ((self.body_param.name, _BODY, 0),)
        self.standard = standard
        self.overrides = route.dependency_overrides_provider
        self.status_code = route.status_code
        self.response_field = route.response_field
        self.response_class = actual_class
        self.dump_json = route.response_field is not None and isinstance(response_class, DefaultPlaceholder)
        self.serialize = {
            "include": route.response_model_include,
            "exclude": route.response_model_exclude,
            "by_alias": route.response_model_by_alias,
            "exclude_unset": route.response_model_exclude_unset,
            "exclude_defaults": route.response_model_exclude_defaults,
            "exclude_none": route.response_model_exclude_none,
        }
        self.path = dependant.path
        plain = self.serialize == {
            "include": None,
            "exclude": None,
            "by_alias": True,
            "exclude_unset": False,
            "exclude_defaults": False,
            "exclude_none": False,
        }
        self.exact = exact_dumper(route.response_model) if self.dump_json and plain else None

    def plain(self) -> bool:
        """Whether FastAPI's handler would do nothing this one leaves out: no dependency
        overrides (tests) and no telemetry being recorded for the request."""
        return not (self.overrides is not None and self.overrides.dependency_overrides) and (
            _get_request_telemetry() is None
        )

    async def handle(self, request: Request) -> Response:
        """The route's handler: the compiled way when it can, FastAPI's otherwise."""
        assert self.standard is not None
        if not self.plain():
            return await self.standard(request)
        try:
            values, body = await self.prepare(request)
        except Fallback:
            return await self.standard(request)
        return await self.run(request, values, body)

    async def prepare(self, request: Request) -> tuple[list[Any], Any]:
        """Every parameter's value and the body's, all valid; `Fallback` (before anything ran)
        if the request is not the plain case. An error reading the body is raised as FastAPI
        raises it."""
        body, raw = Undefined, None
        if self.body_param is not None:
            body, raw = await self._body(request)
        try:
            return self._validate(request), body
        except Fallback:
            raise Fallback(raw) from None

    async def run(self, request: Request, values: list[Any], body: Any) -> Response:
        """The dependencies and the endpoint, in FastAPI's order, and the response."""
        results: list[Any] = []
        sources = (results, values, body, request)
        for call, args in self.steps:
            results.append(await call(**{name: _pick(sources, kind, i) for name, kind, i in args}))
        raw = await self.endpoint(**{name: _pick(sources, kind, i) for name, kind, i in self.endpoint_args})
        return await self._response(request, raw)

    async def _body(self, request: Request) -> tuple[Any, bytes]:
        """The validated body, and its bytes."""
        # The plain case only: FastAPI reads other content types, and reports bad JSON, itself.
        if request.headers.get("content-type") != "application/json":
            raise Fallback(None)
        try:
            body_bytes = await request.body()
        except HTTPException:
            raise
        except Exception as e:  # as FastAPI reports a body it could not read
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (error := get_body_limit_error(e)):
                raise error from e
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from e
        if not body_bytes:
            raise Fallback(body_bytes)
        try:
            json_body = await request.json()  # the same parser as FastAPI's, cached on the request
        except Exception:
            raise Fallback(body_bytes) from None
        assert self.body_param is not None
        valid, errors = self.body_param.validate(json_body, {}, loc=("body",))
        if errors:
            raise Fallback(body_bytes)
        return valid, body_bytes

    def _validate(self, request: Request) -> list[Any]:
        """Every parameter's value, in schedule order; `Fallback` if one is missing or invalid."""
        received: list[Any] = [None, None, None]
        values = []
        for p in self.params:
            source = received[p.source]
            if source is None:
                source = received[p.source] = (
                    request.scope.get("path_params", {})
                    if p.source == _PATH
                    else _query(request)
                    if p.source == _QUERY
                    else request.headers
                )
            values.append(p.value(source))
        return values

    async def _response(self, request: Request, raw: Any) -> Response:
        if isinstance(raw, Response):
            return raw  # its background stays None, as FastAPI leaves it with no BackgroundTasks
        args: dict[str, Any] = {"background": None}
        if self.status_code:
            args["status_code"] = self.status_code
        if self.exact is not None and (content := self.exact(raw)) is not None:
            response = Response(content=content, media_type="application/json", **args)
            if not is_body_allowed_for_status_code(response.status_code):
                response.body = b""
            return response
        endpoint_ctx = _extract_endpoint_context(self.endpoint)
        if self.path:
            endpoint_ctx["path"] = f"{request.method} {request.scope.get('root_path', '').rstrip('/')}{self.path}"
        content = await serialize_response(
            field=self.response_field,
            response_content=raw,
            is_coroutine=True,
            endpoint_ctx=endpoint_ctx,
            dump_json=self.dump_json,
            **self.serialize,
        )
        if self.dump_json:
            response = Response(content=content, media_type="application/json", **args)
        else:
            response = self.response_class(content, **args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response


def _pick(sources: tuple[list[Any], list[Any], Any, Request], kind: int, i: int) -> Any:
    if kind == _RESULT:
        return sources[0][i]
    if kind == _PARAM:
        return sources[1][i]
    return sources[kind]


class FastRoute(APIRoute):
    """An APIRoute whose handler skips FastAPI's per-request bookkeeping where it can (above)."""

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        # FastAPI builds an included route's handler with its effective (merged) settings in a
        # context variable that `super().get_route_handler()` reads; compile from the same.
        route: Any = self
        try:
            from fastapi.routing import _effective_route_context_var

            context = _effective_route_context_var.get()
            if context is not None and context.original_route is self:
                route = context
        except ImportError:  # pragma: no cover
            return standard
        try:
            return Compiled(route, standard).handle
        except Unsupported as why:
            log.debug("route %s keeps FastAPI's handler: %s", getattr(route, "path", "?"), why)
            return standard


def install(routers: Any) -> None:
    """Serve these routers' routes through FastRoute. The routes are made by the routers'
    decorators at import; their class is the only thing that changes (FastAPI builds a
    route's handler from `get_route_handler` when the router is included), so the OpenAPI
    schema, the order and the matching of routes stay as they are."""
    for router in routers:
        for route in router.routes:
            if type(route) is APIRoute:
                route.__class__ = FastRoute
