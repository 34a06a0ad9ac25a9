"""(to be written) command routes: notifications."""

from fastapi import APIRouter

router = APIRouter(tags=["notifications"])
