"""(to be written) command routes: graph."""

from fastapi import APIRouter

router = APIRouter(tags=["graph"])
