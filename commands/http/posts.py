"""(to be written) command routes: posts."""

from fastapi import APIRouter

router = APIRouter(tags=["posts"])
