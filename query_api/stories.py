"""(to be written) query routes: stories."""

from fastapi import APIRouter

from infra.http.deps import Consistent

router = APIRouter(tags=["stories"], dependencies=[Consistent])
