"""erasure log outbox and KEK generations

A backup taken before an erasure still holds the person's wrapped key.
``erasure_log_pending`` carries each completed erasure from the shredding
transaction to the erasure log kept outside the database (replayed by
``privasync restore-check`` after a restore); ``kek_generations`` records when
each KEK generation was replaced, so it is destroyed once past the backup horizon.

Revision ID: 3e7b9d05c1a4
Revises: b8e4f1c2d7a9
Create Date: 2026-12-07 18:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = '3e7b9d05c1a4'
down_revision = 'b8e4f1c2d7a9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kek_generations',
    sa.Column('kek_id', sa.String(length=16), nullable=False),
    sa.Column('created_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', core.db.AwareDateTime(timezone=True), nullable=True),
    sa.Column('destroyed_at', core.db.AwareDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kek_id', name=op.f('pk_kek_generations'))
    )
    op.create_table('erasure_log_pending',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('entry', sa.Text(), nullable=False),
    sa.Column('created_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_erasure_log_pending'))
    )


def downgrade() -> None:
    op.drop_table('erasure_log_pending')
    op.drop_table('kek_generations')
