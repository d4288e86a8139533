"""2.0.1 device model, security events, security profiles, optional id tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 16:27:41.824250
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "security_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("charger_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("tech_info", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "charger_id", "event_type", "occurred_at", name="security_event_key"
        ),
    )
    op.create_index(
        op.f("ix_security_event_charger_id"),
        "security_event",
        ["charger_id"],
        unique=False,
    )
    op.create_table(
        "device_variable",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("charger_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("component", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "component_instance", sqlmodel.sql.sqltypes.AutoString(), nullable=False
        ),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("variable", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "variable_instance", sqlmodel.sql.sqltypes.AutoString(), nullable=False
        ),
        sa.Column("attribute_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("mutability", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("persistent", sa.Boolean(), nullable=True),
        sa.Column("constant", sa.Boolean(), nullable=True),
        sa.Column("data_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "charger_id",
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            name="device_variable_key",
        ),
    )
    op.create_index(
        op.f("ix_device_variable_charger_id"),
        "device_variable",
        ["charger_id"],
        unique=False,
    )
    op.alter_column("cdr", "id_token", existing_type=sa.VARCHAR(), nullable=True)
    op.add_column(
        "charger",
        sa.Column("security_profile", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "id_token",
        sa.Column("token_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.alter_column("session", "id_token", existing_type=sa.VARCHAR(), nullable=True)


def downgrade() -> None:
    op.alter_column("session", "id_token", existing_type=sa.VARCHAR(), nullable=False)
    op.drop_column("id_token", "token_type")
    op.drop_column("charger", "security_profile")
    op.alter_column("cdr", "id_token", existing_type=sa.VARCHAR(), nullable=False)
    op.drop_index(op.f("ix_device_variable_charger_id"), table_name="device_variable")
    op.drop_table("device_variable")
    op.drop_index(op.f("ix_security_event_charger_id"), table_name="security_event")
    op.drop_table("security_event")
