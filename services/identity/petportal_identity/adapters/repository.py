"""identity's tables in PostgreSQL, in the unit of work's transaction; rows leave as domain objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..domain.model import AccountOrigin, Contact, StaffUser
from .erasure import ErasureRepository
from .orm import ClinicRow, ContactRow, ParentAccount, StaffUserRow
from .sign_in import SignInRepository


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- staff ----------------------------------------------------------------------------------

    async def staff_by_email(self, email: str, clinic_id: str | None = None) -> list[StaffUser]:
        query = select(StaffUserRow).where(StaffUserRow.email == email)
        if clinic_id is not None:
            query = query.where(StaffUserRow.clinic_id == clinic_id)
        return [_staff(row) for row in await self.session.exec(query)]

    async def set_staff_password(self, clinic_id: str, email: str, password_hash: str) -> StaffUser | None:
        """The staff user with the new hash; None when there is no such user at that clinic."""
        query = select(StaffUserRow).where(StaffUserRow.clinic_id == clinic_id, StaffUserRow.email == email)
        row = (await self.session.exec(query)).first()
        if row is None:
            return None
        row.password_hash = password_hash
        self.session.add(row)
        return _staff(row)

    async def add_staff(self, user: StaffUser) -> bool:
        """False when the email is already taken at that clinic."""
        row = StaffUserRow(
            id=user.id, clinic_id=user.clinic_id, email=user.email, password_hash=user.password_hash
        )
        stmt = (
            insert(StaffUserRow)
            .values(**row.model_dump())
            .on_conflict_do_nothing(constraint="uq_staff_users_clinic_email")
            .returning(col(StaffUserRow.id))
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

    async def remove_contact(self, clinic_id: str, client_id: str) -> None:
        await self.session.exec(
            delete(ContactRow).where(
                col(ContactRow.clinic_id) == clinic_id, col(ContactRow.client_id) == client_id
            )
        )

    # --- clinics --------------------------------------------------------------------------------

    async def upsert_clinic(self, clinic_id: str, name: str, occurred_at: datetime) -> None:
        stmt = insert(ClinicRow).values(clinic_id=clinic_id, name=name, registered_at=occurred_at)
        stmt = stmt.on_conflict_do_update(index_elements=["clinic_id"], set_={"name": stmt.excluded.name})
        await self.session.exec(stmt)


def _staff(row: StaffUserRow) -> StaffUser:
    return StaffUser(clinic_id=row.clinic_id, email=row.email, password_hash=row.password_hash, id=row.id)


@dataclass(frozen=True)
class SqlRepositories:
    identity: IdentityRepository
    sign_in: SignInRepository
    erasures: ErasureRepository


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(
        identity=IdentityRepository(session),
        sign_in=SignInRepository(session),
        erasures=ErasureRepository(session),
    )
