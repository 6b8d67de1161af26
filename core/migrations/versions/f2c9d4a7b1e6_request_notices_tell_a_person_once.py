"""request notices: tell a person once

Two notice jobs for the same request (the second planned by a finishing step
before the applier saw the first one's CONFIRMED step) both told the person.
``request_notices`` records each notice sent in the notice job's own
transaction; the next job skips it.

Revision ID: f2c9d4a7b1e6
Revises: e1b7c3d9f2a4
Create Date: 2026-12-07 18:05:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'f2c9d4a7b1e6'
down_revision = 'e1b7c3d9f2a4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('request_notices',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sent_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                            name=op.f('fk_request_notices_request_id_requests')),
    sa.PrimaryKeyConstraint('request_id', 'kind', name=op.f('pk_request_notices'))
    )


def downgrade() -> None:
    op.drop_table('request_notices')
