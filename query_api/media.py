"""(to be written) query routes: media."""

from fastapi import APIRouter

from infra.http.deps import Consistent

router = APIRouter(tags=["media"], dependencies=[Consistent])
