"""Reachability: a patient's phone or email can be marked unreachable, and messages held.

A permanent recipient error, or several undelivered reports in a row, marks the contact
unreachable (the reason and since when); its messages wait in the outbox as `held` until
staff fix the contact. The outbox status column is free text, so `held` needs no change.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REASON = sqlmodel.sql.sqltypes.AutoString(length=200)


def upgrade() -> None:
    # Courses, messages and replies refer to the patient table: on SQLite it is altered in
    # place (ALTER TABLE ... ADD COLUMN), never copied and dropped.
    with op.batch_alter_table("patient", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("sms_unreachable_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("sms_unreachable_reason", _REASON, nullable=True))
        batch_op.add_column(
            sa.Column("email_unreachable_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("email_unreachable_reason", _REASON, nullable=True))
        batch_op.add_column(
            sa.Column("sms_undelivered", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    op.execute(
        "UPDATE outbox SET status = 'pending', last_error = 'released: reachability removed' "
        "WHERE status = 'held'"
    )
    with op.batch_alter_table("patient", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("sms_undelivered")
        batch_op.drop_column("email_unreachable_reason")
        batch_op.drop_column("email_unreachable_at")
        batch_op.drop_column("sms_unreachable_reason")
        batch_op.drop_column("sms_unreachable_at")
