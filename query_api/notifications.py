"""(to be written) query routes: notifications."""

from fastapi import APIRouter

from infra.http.deps import Consistent

router = APIRouter(tags=["notifications"], dependencies=[Consistent])
