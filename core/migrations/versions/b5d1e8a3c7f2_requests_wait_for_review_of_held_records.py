"""requests wait for the review of held records (destination status awaiting_review)

An access or portability answer with records held for an admin's review no longer
lets its request complete: the destination stands ``awaiting_review`` until the
last held record is decided, so the deadline (Art. 12(3)) and the overdue flag
cover the review. Open requests gathered before this revision whose destinations
still hold records are moved to it; completed ones stay as they are (their answer
was given). No table changes.

Revision ID: b5d1e8a3c7f2
Revises: a9c4e7f1d2b8
Create Date: 2026-12-07 19:40:00.000000
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = 'b5d1e8a3c7f2'
down_revision = 'a9c4e7f1d2b8'
branch_labels = None
depends_on = None

_destinations = sa.table('request_destinations', sa.column('request_id', sa.String),
                         sa.column('destination', sa.String), sa.column('status', sa.String),
                         sa.column('reason', sa.String), sa.column('receipt', sa.Text))
_requests = sa.table('requests', sa.column('id', sa.String), sa.column('kind', sa.String),
                     sa.column('status', sa.String))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_destinations.c.request_id, _destinations.c.destination,
                                  _destinations.c.receipt).where(
        _destinations.c.status == 'done', _destinations.c.receipt.is_not(None),
        _destinations.c.request_id.in_(sa.select(_requests.c.id).where(
            _requests.c.status.in_(['in_progress', 'identity_pending']),
            _requests.c.kind.in_(['access', 'portability']))))).all()
    for r in rows:
        held = json.loads(r.receipt).get('held_for_review') or []
        if held:
            conn.execute(sa.update(_destinations).where(
                _destinations.c.request_id == r.request_id,
                _destinations.c.destination == r.destination).values(
                status='awaiting_review',
                reason=f"awaiting review: {len(held)} record(s) held, not in the answer"))


def downgrade() -> None:
    op.execute("UPDATE request_destinations SET status = 'done' "
               "WHERE status = 'awaiting_review'")
