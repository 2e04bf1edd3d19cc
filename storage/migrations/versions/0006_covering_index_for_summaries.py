"""covering index for summaries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["period", "ward", "category", "level", "basis", "source"]


def upgrade() -> None:
    """Apply: every summary GROUP BY is answered from the index alone."""
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_period_ward")
        batch_op.create_index("ix_reports_summary", COLUMNS, unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_summary")
        batch_op.create_index("ix_reports_period_ward", ["period", "ward"], unique=False)
