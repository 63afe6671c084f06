"""User management for administrators."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import JSONBody, QueryParameter

from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate, UserPublic, UserUpdate
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["账号"]
    guards = [requires_login]

    @post("/")
    async def create(
        self, db: Db, actor: CurrentActor, cipher: Cipher, data: JSONBody[UserCreate]
    ) -> UserPublic:
        user, _ = await accounts.create_user(session=db, actor=actor, data=data, cipher=cipher)
        return accounts.to_public(user)

    @get("/")
    async def list_users(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        role: Annotated[str | None, QueryParameter(max_length=32)] = None,
        region_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
    ) -> Paged[UserPublic]:
        users, total = await accounts.list_users(
            session=db,
            actor=actor,
            limit=page.limit,
            offset=page.offset,
            role=role,
            region_code=region_code,
        )
        return Paged(items=[accounts.to_public(u) for u in users], total=total)

    @get("/{user_id:int}")
    async def get_user(self, db: Db, actor: CurrentActor, user_id: RowId) -> UserPublic:
        return accounts.to_public(await accounts.get_user(session=db, actor=actor, user_id=user_id))

    @patch("/{user_id:int}")
    async def update(
        self, db: Db, actor: CurrentActor, user_id: RowId, data: JSONBody[UserUpdate]
    ) -> UserPublic:
        user = await accounts.update_user(session=db, actor=actor, user_id=user_id, data=data)
        return accounts.to_public(user)
