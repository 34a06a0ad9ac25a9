"""(to be written) query routes: graph."""

from fastapi import APIRouter

from infra.http.deps import Consistent

router = APIRouter(tags=["graph"], dependencies=[Consistent])
