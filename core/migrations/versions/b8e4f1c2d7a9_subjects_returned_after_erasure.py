"""subjects: returned after an erasure

A person erased before who comes back with a request or a withdrawal is held as a
new subject for just that, shredded again when it is done; ``returned_after`` names
the erasure whose suppression list held the address (the access answer tells it).

Revision ID: b8e4f1c2d7a9
Revises: a8d3f1c6e2b9
Create Date: 2026-12-08 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'b8e4f1c2d7a9'
down_revision = 'a8d3f1c6e2b9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('returned_after', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_subjects_returned_after'), ['returned_after'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subjects_returned_after'))
        batch_op.drop_column('returned_after')
