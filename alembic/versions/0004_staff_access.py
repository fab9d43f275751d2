"""Staff access: sessions, sign-in attempts, roles, two-factor, API keys, audit, erasure.

The clinic's one API key moves into the new key table (named "default", with admin rights,
as it could do everything before); staff users who exist already become admins for the
same reason.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signinattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signinattempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signinattempt_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_signinattempt_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_signinattempt_at"), ["at"], unique=False)

    op.create_table(
        "apikey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("apikey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apikey_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "auditevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.create_index("ix_auditevent_clinic_at", ["clinic_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_auditevent_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "staffsession",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("second_factor_due", sa.Boolean(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("flash", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("totp_pending", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staffuser.id"],
        ),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("staffsession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staffsession_last_seen"), ["last_seen"], unique=False)
        batch_op.create_index(batch_op.f("ix_staffsession_user_id"), ["user_id"], unique=False)

    clinic = sa.table(
        "clinic",
        sa.column("id", sa.Integer()),
        sa.column("api_key_hash", sa.String()),
        sa.column("created_at", sa.DateTime()),
    )
    apikey = sa.table(
        "apikey",
        sa.column("clinic_id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("key_hash", sa.String()),
        sa.column("admin", sa.Boolean()),
        sa.column("created_at", sa.DateTime()),
    )
    op.execute(
        apikey.insert().from_select(
            ["clinic_id", "name", "key_hash", "admin", "created_at"],
            sa.select(
                clinic.c.id,
                sa.literal("default"),
                clinic.c.api_key_hash,
                sa.true(),
                clinic.c.created_at,
            ).where(clinic.c.api_key_hash.is_not(None)),
        )
    )
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_clinic_api_key_hash"))
        batch_op.drop_column("api_key_hash")

    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )

    with op.batch_alter_table("staffuser", schema=None) as batch_op:
        # Users who exist already could do everything: they become admins.
        batch_op.add_column(
            sa.Column("role", sa.String(length=8), nullable=False, server_default="admin")
        )
        batch_op.add_column(
            sa.Column("disabled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("totp_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("staffuser", schema=None) as batch_op:
        batch_op.alter_column("role", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("staffuser", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("role")

    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("erased_at")

    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_hash", sa.VARCHAR(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_clinic_api_key_hash"), ["api_key_hash"], unique=False)
        batch_op.drop_column("retention_days")
    # The oldest key still in use of each clinic becomes its one key again.
    op.execute(
        """
        UPDATE clinic SET api_key_hash = (
            SELECT key_hash FROM apikey
            WHERE apikey.clinic_id = clinic.id AND apikey.revoked_at IS NULL
            ORDER BY apikey.id LIMIT 1
        )
        """
    )

    with op.batch_alter_table("staffsession", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staffsession_user_id"))
        batch_op.drop_index(batch_op.f("ix_staffsession_last_seen"))

    op.drop_table("staffsession")
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditevent_patient_id"))
        batch_op.drop_index("ix_auditevent_clinic_at")

    op.drop_table("auditevent")
    with op.batch_alter_table("apikey", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apikey_clinic_id"))

    op.drop_table("apikey")
    with op.batch_alter_table("signinattempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signinattempt_at"))
        batch_op.drop_index(batch_op.f("ix_signinattempt_address"))
        batch_op.drop_index(batch_op.f("ix_signinattempt_account"))

    op.drop_table("signinattempt")
