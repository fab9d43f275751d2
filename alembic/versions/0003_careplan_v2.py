"""Care plan v2: a clinic's SMS name, home tests and lab reminders.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clinic") as batch:
        batch.add_column(
            sa.Column(
                "sms_name",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="",
            )
        )
        batch.add_column(
            sa.Column("home_tests", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("lab_reminders", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    # Clinics made before: their SMS name is their name's first words that fit 20 characters
    # (the application's rule); an SMS without it would fall back to the whole name.
    clinic = sa.table("clinic", sa.column("id"), sa.column("name"), sa.column("sms_name"))
    connection = op.get_bind()
    for clinic_id, name in connection.execute(sa.select(clinic.c.id, clinic.c.name)).all():
        words, short = name.split(), ""
        for word in words:
            if len(f"{short} {word}".strip()) > 20:
                break
            short = f"{short} {word}".strip()
        connection.execute(
            clinic.update().where(clinic.c.id == clinic_id).values(sms_name=short or name[:20])
        )


def downgrade() -> None:
    with op.batch_alter_table("clinic") as batch:
        batch.drop_column("lab_reminders")
        batch.drop_column("home_tests")
        batch.drop_column("sms_name")
