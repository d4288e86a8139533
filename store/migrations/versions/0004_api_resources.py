"""operator API resources: chargers deleted outright, one default tariff

Sessions no longer reference the charger table, so a deleted charger's
sessions (and their CDRs) stay. At most one tariff is the default. Indexes
for the API's filters.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("session_charger_id_fkey", "session", type_="foreignkey")

    # Keep the oldest of several defaults, then allow only one.
    op.execute(
        "UPDATE tariff SET is_default = false WHERE is_default"
        " AND id <> (SELECT min(id) FROM tariff WHERE is_default)"
    )
    op.create_index(
        "tariff_one_default",
        "tariff",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )

    op.create_index(op.f("ix_id_token_owner"), "id_token", ["owner"])
    op.create_index(op.f("ix_id_token_parent_token"), "id_token", ["parent_token"])
    op.create_index(op.f("ix_cdr_stopped_at"), "cdr", ["stopped_at"])
    op.create_index(
        op.f("ix_command_audit_created_at"), "command_audit", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_command_audit_created_at"), table_name="command_audit")
    op.drop_index(op.f("ix_cdr_stopped_at"), table_name="cdr")
    op.drop_index(op.f("ix_id_token_parent_token"), table_name="id_token")
    op.drop_index(op.f("ix_id_token_owner"), table_name="id_token")
    op.drop_index("tariff_one_default", table_name="tariff")
    # NOT VALID: sessions of chargers deleted meanwhile stay, unchecked.
    op.execute(
        "ALTER TABLE session ADD CONSTRAINT session_charger_id_fkey"
        " FOREIGN KEY (charger_id) REFERENCES charger (id) NOT VALID"
    )
