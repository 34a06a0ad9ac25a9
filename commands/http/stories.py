"""(to be written) command routes: stories."""

from fastapi import APIRouter

router = APIRouter(tags=["stories"])
