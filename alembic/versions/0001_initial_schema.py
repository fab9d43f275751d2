"""Initial schema: clinics, patients, courses, events, consent ledger, outbox, workers.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("help_contact", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("quiet_start", sa.Time(), nullable=False),
        sa.Column("quiet_end", sa.Time(), nullable=False),
        sa.Column("send_time", sa.Time(), nullable=False),
        sa.Column("ipledge_enabled", sa.Boolean(), nullable=False),
        sa.Column("api_key_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinic_api_key_hash"), ["api_key_hash"], unique=False)

    op.create_table(
        "workerheartbeat",
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("hostname", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_tick", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("first_name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("ipledge", sa.Boolean(), nullable=False),
        sa.Column("consent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("consent_source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("sms_opted_out", sa.Boolean(), nullable=False),
        sa.Column("email_opted_out", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_phone"), ["phone"], unique=False)

    op.create_table(
        "staffuser",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    with op.batch_alter_table("staffuser", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staffuser_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "consentevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consentevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consentevent_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "course",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("weeks", sa.Integer(), nullable=False),
        sa.Column("last_dose_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("plan_from", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("planned_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_course_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_course_planned_until"), ["planned_until"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_course_status"), ["status"], unique=False)

    op.create_table(
        "inboundmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("keyword", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "provider_id", name="uq_inbound_patient_provider"),
    )
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inboundmessage_clinic_id"), ["clinic_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_inboundmessage_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "courseevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("course_id", "type", "date", name="uq_event"),
    )
    with op.batch_alter_table("courseevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courseevent_course_id"), ["course_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("topics", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("items", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("send_after", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("claim_token", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("course_id", "key", "channel", name="uq_outbox_course_key_channel"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_course_id"), ["course_id"], unique=False)
        batch_op.create_index("ix_outbox_patient_sent", ["patient_id", "sent_at"], unique=False)
        batch_op.create_index(
            "ix_outbox_pending_send_after",
            ["send_after"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(batch_op.f("ix_outbox_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_sending_lease",
            ["lease_until"],
            unique=False,
            postgresql_where=sa.text("status = 'sending'"),
            sqlite_where=sa.text("status = 'sending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_sending_lease",
            postgresql_where=sa.text("status = 'sending'"),
            sqlite_where=sa.text("status = 'sending'"),
        )
        batch_op.drop_index(batch_op.f("ix_outbox_provider_id"))
        batch_op.drop_index(
            "ix_outbox_pending_send_after",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_outbox_patient_sent")
        batch_op.drop_index(batch_op.f("ix_outbox_course_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("courseevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courseevent_course_id"))

    op.drop_table("courseevent")
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inboundmessage_patient_id"))
        batch_op.drop_index(batch_op.f("ix_inboundmessage_clinic_id"))

    op.drop_table("inboundmessage")
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_course_status"))
        batch_op.drop_index(batch_op.f("ix_course_planned_until"))
        batch_op.drop_index(batch_op.f("ix_course_patient_id"))

    op.drop_table("course")
    with op.batch_alter_table("consentevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consentevent_patient_id"))

    op.drop_table("consentevent")
    with op.batch_alter_table("staffuser", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staffuser_clinic_id"))

    op.drop_table("staffuser")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_phone"))
        batch_op.drop_index(batch_op.f("ix_patient_email"))
        batch_op.drop_index(batch_op.f("ix_patient_clinic_id"))

    op.drop_table("patient")
    op.drop_table("workerheartbeat")
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinic_api_key_hash"))

    op.drop_table("clinic")
