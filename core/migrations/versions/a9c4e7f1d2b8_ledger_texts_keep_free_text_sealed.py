"""ledger texts: free text about a person sealed under their key, hashed in the chain

An admin's reason (extend, reject, not applicable) and a partner's acknowledgement
detail were chained in clear: readable after the person's key was destroyed, and
not removable without breaking the chain. The chained entry now holds only a
salted hash of such a text; ``ledger_texts`` keeps the text and its salt sealed
under the person's key, and loses them with it. Entries chained before this
revision keep their text as it was (the chain cannot be rewritten).

Revision ID: a9c4e7f1d2b8
Revises: 3e7b9d05c1a4
Create Date: 2026-12-08 10:20:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'a9c4e7f1d2b8'
down_revision = '3e7b9d05c1a4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_texts',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_ledger_texts'))
    )
    op.create_index(op.f('ix_ledger_texts_subject_id'), 'ledger_texts', ['subject_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ledger_texts_subject_id'), table_name='ledger_texts')
    op.drop_table('ledger_texts')
