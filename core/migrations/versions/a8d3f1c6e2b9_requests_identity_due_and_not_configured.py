"""requests: when an identity check runs out, and which known systems were not configured

``identity_due_at``: asked to prove who they are (Art. 12(6)), the person has until
then; past it the request is flagged for an admin (the clock stays paused, as the
article allows, but no longer unnoticed). Requests waiting for identity before this
revision get 30 days (the default of PRIVASYNC_IDENTITY_WAIT_DAYS) from when their
clock stopped. ``not_configured``: the known systems no connection was configured
for at receipt (a JSON list), so a request's proof says which were never asked;
NULL for requests received before it was kept.

Revision ID: a8d3f1c6e2b9
Revises: f2c9d4a7b1e6
Create Date: 2026-12-08 10:00:00.000000
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'a8d3f1c6e2b9'
down_revision = 'f2c9d4a7b1e6'
branch_labels = None
depends_on = None

_WAIT = timedelta(days=30)


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_due_at', core.db.AwareDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('not_configured', sa.Text(), nullable=True))
    requests = sa.table('requests', sa.column('id', sa.String()),
                        sa.column('status', sa.String()),
                        sa.column('paused_since', core.db.AwareDateTime(timezone=True)),
                        sa.column('identity_due_at', core.db.AwareDateTime(timezone=True)))
    conn = op.get_bind()
    waiting = conn.execute(sa.select(requests.c.id, requests.c.paused_since).where(
        requests.c.status == 'identity_pending', requests.c.paused_since.is_not(None))).all()
    for row in waiting:
        conn.execute(sa.update(requests).where(requests.c.id == row.id)
                     .values(identity_due_at=row.paused_since + _WAIT))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('not_configured')
        batch_op.drop_column('identity_due_at')
