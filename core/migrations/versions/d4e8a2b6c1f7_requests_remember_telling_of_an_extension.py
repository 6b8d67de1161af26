"""requests remember when the person was told of an extension (Art. 12(3))

An extension is now told to the person through the notifier, like a
confirmation; ``extension_told_at`` marks it told (or given up), so it is sent
once. Extensions decided before this revision are marked told: their month to
tell has mostly passed, and a late notice would mislead.

Revision ID: d4e8a2b6c1f7
Revises: c7d2e5a1f9b3
Create Date: 2026-12-07 16:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'd4e8a2b6c1f7'
down_revision = 'c7d2e5a1f9b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension_told_at', core.db.AwareDateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE requests SET extension_told_at = received_at "
               "WHERE extended_months > 0")


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('extension_told_at')
