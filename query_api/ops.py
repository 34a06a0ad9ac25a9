"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from infra.http.deps import C
from infra.http.responses import JsonResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(c: C) -> JsonResponse:
    """Ready when every backing service answers a real request."""
    checks: dict[str, str] = {}
    for name, probe in c.probes.items():
        try:
            # Off the event loop: probes make real (blocking) requests to their servers.
            await asyncio.to_thread(probe)
            checks[name] = "ok"
        except Exception as exc:  # a probe's failure is the answer, not an error
            checks[name] = f"down: {type(exc).__name__}: {exc}"[:300]
    ready = all(v == "ok" for v in checks.values())
    headers = None if ready else {"Retry-After": "5"}
    return JsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503, headers=headers)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(c: C) -> str:
    lines = []
    for name, value in sorted(c.consistency.metrics().items()):
        lines += [f"# TYPE glimpse_{name} gauge", f"glimpse_{name} {value}"]
    extra = [await asyncio.to_thread(block) for block in c.extra_metrics]  # may ask a server (Redis)
    return "\n".join(lines) + "\n" + "".join(extra)
