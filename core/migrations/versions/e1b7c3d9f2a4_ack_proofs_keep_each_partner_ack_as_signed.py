"""ack proofs: keep each partner acknowledgement as it was signed

The ledger's ``proof_sha256`` could not be checked: the signed body was gone
once the inbox row was applied, and the signature headers were never kept.
``ack_proofs`` keeps both, sealed under the person's key (the body may hold the
partner's own words about them). Acknowledgements applied before this revision
keep only their hash.

Revision ID: e1b7c3d9f2a4
Revises: d4e8a2b6c1f7
Create Date: 2026-12-07 16:10:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = 'e1b7c3d9f2a4'
down_revision = 'd4e8a2b6c1f7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ack_proofs',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('proof_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.Column('signed', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                            name=op.f('fk_ack_proofs_request_id_requests')),
    sa.PrimaryKeyConstraint('request_id', 'destination', 'event_id',
                            name=op.f('pk_ack_proofs'))
    )


def downgrade() -> None:
    op.drop_table('ack_proofs')
