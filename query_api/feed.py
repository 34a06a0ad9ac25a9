"""(to be written) query routes: feed."""

from fastapi import APIRouter

from infra.http.deps import Consistent

router = APIRouter(tags=["feed"], dependencies=[Consistent])
