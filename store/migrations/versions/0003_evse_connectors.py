"""a status per 2.0.1 connector within its EVSE

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("connector", "status_event"):
        op.add_column(
            table,
            sa.Column(
                "evse_connector_id", sa.Integer(), nullable=False, server_default="0"
            ),
        )
    op.drop_constraint("connector_pkey", "connector", type_="primary")
    op.create_primary_key(
        "connector_pkey",
        "connector",
        ["charger_id", "connector_id", "evse_connector_id"],
    )
    op.drop_constraint(
        "status_event_charger_id_connector_id_status_at_status_key",
        "status_event",
        type_="unique",
    )
    op.create_unique_constraint(
        "status_event_key",
        "status_event",
        ["charger_id", "connector_id", "evse_connector_id", "status_at", "status"],
    )


def downgrade() -> None:
    op.drop_constraint("status_event_key", "status_event", type_="unique")
    op.create_unique_constraint(
        "status_event_charger_id_connector_id_status_at_status_key",
        "status_event",
        ["charger_id", "connector_id", "status_at", "status"],
    )
    op.drop_constraint("connector_pkey", "connector", type_="primary")
    op.create_primary_key("connector_pkey", "connector", ["charger_id", "connector_id"])
    for table in ("connector", "status_event"):
        op.drop_column(table, "evse_connector_id")
