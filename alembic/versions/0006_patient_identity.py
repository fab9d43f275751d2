"""Who the patient is: last name, date of birth, and the clinic's chart number.

The chart number (`external_id`) is unique per clinic; patients without one (NULL) repeat.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.add_column(
            sa.Column(
                "last_name",
                sqlmodel.sql.sqltypes.AutoString(length=80),
                nullable=False,
                server_default="",
            )
        )
        batch.add_column(sa.Column("date_of_birth", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.create_unique_constraint(
            "uq_patient_clinic_external_id", ["clinic_id", "external_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.drop_constraint("uq_patient_clinic_external_id", type_="unique")
        batch.drop_column("external_id")
        batch.drop_column("date_of_birth")
        batch.drop_column("last_name")
