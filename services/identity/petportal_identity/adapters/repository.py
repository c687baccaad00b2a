"""Queries on identity's tables, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..domain.model import AccountOrigin, Contact
from .orm import ClinicRow, ContactRow, ParentAccount, StaffUser


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- staff ----------------------------------------------------------------------------------

    async def staff_by_email(self, email: str, clinic_id: str | None = None) -> Sequence[StaffUser]:
        query = select(StaffUser).where(StaffUser.email == email)
        if clinic_id is not None:
            query = query.where(StaffUser.clinic_id == clinic_id)
        return (await self.session.exec(query)).all()

    async def set_staff_password(self, clinic_id: str, email: str, password_hash: str) -> StaffUser | None:
        """The staff user with the new hash; None when there is no such user at that clinic."""
        query = select(StaffUser).where(StaffUser.clinic_id == clinic_id, StaffUser.email == email)
        user = (await self.session.exec(query)).first()
        if user is not None:
            user.password_hash = password_hash
            self.session.add(user)
        return user

    async def add_staff(self, user: StaffUser) -> bool:
        """False when the email is already taken at that clinic."""
        stmt = (
            insert(StaffUser)
            .values(**user.model_dump())
            .on_conflict_do_nothing(constraint="uq_staff_users_clinic_email")
            .returning(col(StaffUser.id))
        )
        return (await self.session.exec(stmt)).first() is not None

    # --- contacts -------------------------------------------------------------------------------

    async def upsert_contact(self, contact: Contact, occurred_at: datetime) -> None:
        values = {
            "clinic_id": contact.clinic_id,
            "client_id": contact.client_id,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "email": contact.email,
            "phone": contact.phone,
            "source_occurred_at": occurred_at,
        }
        stmt = insert(ContactRow).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["clinic_id", "client_id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("clinic_id", "client_id")},
            where=ContactRow.source_occurred_at <= stmt.excluded.source_occurred_at,
        )
        await self.session.exec(stmt)

    async def contact(self, clinic_id: str, client_id: str) -> Contact | None:
        row = await self.session.get(ContactRow, (clinic_id, client_id))
        if row is None:
            return None
        return Contact(row.clinic_id, row.client_id, row.first_name, row.last_name, row.email, row.phone)

    # --- parent accounts ------------------------------------------------------------------------

    async def ensure_account(self, clinic_id: str, client_id: str, origin: AccountOrigin) -> uuid.UUID:
        """The account id of the client, creating the account if it does not exist yet."""
        stmt = (
            insert(ParentAccount)
            .values(
                id=uuid.uuid4(),
                clinic_id=clinic_id,
                client_id=client_id,
                created_via=origin,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(constraint="uq_parent_accounts_client")
        )
        await self.session.exec(stmt)
        account = (
            await self.session.exec(
                select(ParentAccount).where(
                    ParentAccount.clinic_id == clinic_id, ParentAccount.client_id == client_id
                )
            )
        ).one()
        return account.id

    async def account(self, clinic_id: str, client_id: str) -> ParentAccount | None:
        return (
            await self.session.exec(
                select(ParentAccount).where(
                    ParentAccount.clinic_id == clinic_id, ParentAccount.client_id == client_id
                )
            )
        ).first()

    # --- clinics --------------------------------------------------------------------------------

    async def upsert_clinic(self, clinic_id: str, name: str, occurred_at: datetime) -> None:
        stmt = insert(ClinicRow).values(clinic_id=clinic_id, name=name, registered_at=occurred_at)
        stmt = stmt.on_conflict_do_update(index_elements=["clinic_id"], set_={"name": stmt.excluded.name})
        await self.session.exec(stmt)

    async def clinic_exists(self, clinic_id: str) -> bool:
        return await self.session.get(ClinicRow, clinic_id) is not None
