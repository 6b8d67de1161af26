"""finished jobs pruned, disclosures kept

Done and superseded jobs are deleted after ``PRIVASYNC_JOBS_KEEP_DAYS``
(core.outbox.prune): ``ix_jobs_finished`` lets the retention (and a breach scope's
window) read finished jobs by when they finished instead of the whole table, and
``disclosures`` keeps what each destination was sent, per person and day, once the
done jobs that recorded it are gone.

Revision ID: d9f3b2a6e4c1
Revises: d9f4b2c6a8e1
Create Date: 2026-12-08 12:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'd9f3b2a6e4c1'
down_revision = 'd9f4b2c6a8e1'
branch_labels = None
depends_on = None

FINISHED = "status IN ('done', 'superseded')"


def upgrade() -> None:
    op.create_table('disclosures',
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('day', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sent', sa.String(length=500), nullable=False),
    sa.Column('first_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.Column('last_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.Column('jobs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('destination', 'subject_id', 'day', 'kind', 'sent',
                            name=op.f('pk_disclosures'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_finished', ['done_at'], unique=False,
                              sqlite_where=sa.text(FINISHED), postgresql_where=sa.text(FINISHED))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_finished', sqlite_where=sa.text(FINISHED),
                            postgresql_where=sa.text(FINISHED))
    op.drop_table('disclosures')
