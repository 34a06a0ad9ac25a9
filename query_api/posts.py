"""(to be written) query routes: posts."""

from fastapi import APIRouter

from infra.http.deps import Consistent

router = APIRouter(tags=["posts"], dependencies=[Consistent])
