"""(to be written) command routes: media."""

from fastapi import APIRouter

router = APIRouter(tags=["media"])
