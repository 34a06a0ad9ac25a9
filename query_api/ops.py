"""Liveness, readiness and metrics."""

from __future__ import annotations

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
    checks: dict[str, str] = {}
    try:
        c.log.head()
        checks["event_log"] = "ok"
    except Exception as exc:
        checks["event_log"] = f"down: {exc}"
    lag = c.log.head() - c.projector.position if checks["event_log"] == "ok" else -1
    checks["projections"] = "ok" if lag == 0 else f"behind by {lag}"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(c: C) -> str:
    head = c.log.head()
    lines = [
        "# TYPE glimpse_event_log_head gauge",
        f"glimpse_event_log_head {head}",
        "# TYPE glimpse_projection_position gauge",
        f"glimpse_projection_position {c.projector.position}",
        "# TYPE glimpse_projection_lag gauge",
        f"glimpse_projection_lag {head - c.projector.position}",
    ]
    return "\n".join(lines) + "\n"
