"""HTTP routes of ``/api/users/shares``: share a folder with a user or a group.

An administrator may share any folder, a user the folders in their home. Everyone lists the
shares they made and those made for them; a share is withdrawn by whoever made it possible
(an administrator, the home's owner) or refused by the user it was made for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, Field, model_validator
from starlette.requests import HTTPConnection

from junction.auth.middleware import current_user
from junction.plugin import use
from junction.plugins.users.homes import HOMES, Homes, Share

__all__ = ["ShareModel", "ShareRequest", "router"]

router = APIRouter(tags=["users"])

HomesDep = Annotated[Homes, use(HOMES)]


class ShareRequest(BaseModel):
    """Body of ``PUT /api/users/shares``: one folder, for one user or one group."""

    path: str = Field(description="The folder to share (an API path).")
    user: str | None = Field(None, description="Share with this user ...")
    group: str | None = Field(None, description="... or with the members of this group.")
    access: Literal["read", "write"] = Field("read", description="read-only or read-write")

    @model_validator(mode="after")
    def _one_target(self) -> ShareRequest:
        if (self.user is None) == (self.group is None):
            raise ValueError("name either a user or a group")
        return self


class ShareModel(BaseModel):
    """A folder shared with a user or a group."""

    id: int
    path: str
    kind: Literal["user", "group"]
    target: str
    access: Literal["read", "write"]
    created_by: str
    created: datetime

    @classmethod
    def of(cls, share: Share) -> ShareModel:
        """The wire model of a share."""
        return cls(
            id=share.id,
            path=share.path,
            kind=share.kind,
            target=share.target,
            access=share.access,
            created_by=share.created_by,
            created=share.created,
        )


@router.get("/api/users/shares")
async def list_shares(conn: HTTPConnection, homes: HomesDep) -> list[ShareModel]:
    """The shares the caller made or may manage, and those made for them (all for admins)."""
    return [ShareModel.of(s) for s in homes.shares_for(current_user(conn.scope))]


@router.put(
    "/api/users/shares",
    responses={404: {"description": "No such folder, or not the caller's to share"}},
)
async def put_share(
    conn: HTTPConnection, homes: HomesDep, body: Annotated[ShareRequest, Body()]
) -> ShareModel:
    """Share a folder read-only or read-write (replaces an earlier share for the same
    user or group)."""
    kind: Literal["user", "group"] = "user" if body.user is not None else "group"
    target = body.user if body.user is not None else body.group
    assert target is not None  # the model's validator
    share = await homes.share(current_user(conn.scope), body.path, kind, target, body.access)
    return ShareModel.of(share)


@router.delete(
    "/api/users/shares/{share_id}",
    status_code=204,
    responses={404: {"description": "No such share"}},
)
async def delete_share(conn: HTTPConnection, homes: HomesDep, share_id: int) -> Response:
    """Withdraw a share."""
    await homes.unshare(current_user(conn.scope), share_id)
    return Response(status_code=204)
