"""Replies for staff and texts applied once: the inbox state, the inbound journal, notices.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNAPPLIED = sa.text("applied_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notify_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True)
        )
        batch_op.add_column(
            sa.Column("replies_notified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("replies_notified_id", sa.Integer(), nullable=True))

    # The keyword a text matched becomes the kind of reply staff see; every existing row gets
    # a state: keywords were answered by the service, anything else was never read by anyone.
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.alter_column(
            "keyword",
            new_column_name="kind",
            existing_type=sa.String(length=8),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("course_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("state", sa.String(length=8), nullable=False, server_default="unread")
        )
        batch_op.add_column(
            sa.Column("handled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("handled_by", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_inboundmessage_course_id_course", "course", ["course_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_inboundmessage_course_id"), ["course_id"], unique=False
        )
        batch_op.create_index(
            "ix_inboundmessage_clinic_state", ["clinic_id", "state", "received_at"], unique=False
        )
    op.execute(
        "UPDATE inboundmessage SET kind = CASE kind WHEN 'stop' THEN 'opt_out' "
        "WHEN 'start' THEN 'opt_in' WHEN 'help' THEN 'help' ELSE 'message' END"
    )
    op.execute(
        "UPDATE inboundmessage SET state = 'handled', handled_at = received_at "
        "WHERE kind <> 'message'"
    )
    op.execute(
        "UPDATE inboundmessage SET course_id = (SELECT max(course.id) FROM course "
        "WHERE course.patient_id = inboundmessage.patient_id)"
    )
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.alter_column("state", existing_type=sa.String(length=8), server_default=None)

    op.create_table(
        "inboundtext",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("opt_out_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("applied_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_sid"),
    )
    with op.batch_alter_table("inboundtext", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inboundtext_unapplied",
            ["received_at"],
            unique=False,
            postgresql_where=UNAPPLIED,
            sqlite_where=UNAPPLIED,
        )


def downgrade() -> None:
    with op.batch_alter_table("inboundtext", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_inboundtext_unapplied", postgresql_where=UNAPPLIED, sqlite_where=UNAPPLIED
        )
    op.drop_table("inboundtext")

    op.execute(
        "UPDATE inboundmessage SET kind = CASE kind WHEN 'opt_out' THEN 'stop' "
        "WHEN 'opt_in' THEN 'start' WHEN 'help' THEN 'help' ELSE 'other' END"
    )
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.drop_index("ix_inboundmessage_clinic_state")
        batch_op.drop_index(batch_op.f("ix_inboundmessage_course_id"))
        batch_op.drop_constraint("fk_inboundmessage_course_id_course", type_="foreignkey")
        batch_op.drop_column("handled_by")
        batch_op.drop_column("handled_at")
        batch_op.drop_column("state")
        batch_op.drop_column("course_id")
        batch_op.alter_column(
            "kind",
            new_column_name="keyword",
            existing_type=sa.String(length=8),
            existing_nullable=False,
        )

    # Patients and staff refer to the clinic table: on SQLite it must be altered in place
    # (ALTER TABLE ... DROP COLUMN), never copied and dropped, which foreign keys forbid.
    with op.batch_alter_table("clinic", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("replies_notified_id")
        batch_op.drop_column("replies_notified_at")
        batch_op.drop_column("notify_email")
