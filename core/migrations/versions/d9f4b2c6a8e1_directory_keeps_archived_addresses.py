"""a list's directory also holds the addresses it keeps without counting them

Mailchimp keeps archived contacts: a withdrawal must still reach them, a record update
must not. With them in the directory (``kept``), an address in none of its rows was not
on the list at all when it was read, which a delivery may rely on.

Revision ID: d9f4b2c6a8e1
Revises: c3a7e9d1b5f8
Create Date: 2026-12-08 02:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'd9f4b2c6a8e1'
down_revision = 'c3a7e9d1b5f8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('directory', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kept', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('directory', schema=None) as batch_op:
        batch_op.drop_column('kept')
