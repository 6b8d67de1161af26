"""restarts of supervised processes

``privasync serve`` on one machine supervises its API and background processes and
counts each restart here, where ``/metrics`` (served by another process) reads it.

Revision ID: c3a7e9d1b5f8
Revises: b5d1e8a3c7f2
Create Date: 2026-12-08 00:10:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'c3a7e9d1b5f8'
down_revision = 'b5d1e8a3c7f2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('restarts',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_exit', sa.Integer(), nullable=False),
    sa.Column('at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_restarts'))
    )


def downgrade() -> None:
    op.drop_table('restarts')
