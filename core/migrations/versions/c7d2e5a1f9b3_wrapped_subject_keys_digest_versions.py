"""wrapped subject keys (envelope encryption), digest key versions, keyed Mailchimp refs

Every subject key stored so far was unwrapped: this wraps each under the KEK
(which the caller hands over: the database never holds it), records the digest
key version of every stored digest (1: the installation secret, captured
wrapped as digest key 1), and replaces Mailchimp ``member:<md5>`` references
(an unkeyed hash of an address) with keyed ones, or drops those whose address
privasync does not hold.

Revision ID: c7d2e5a1f9b3
Revises: 409bbea4a4e4
Create Date: 2026-11-27 09:00:00.000000
"""
from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

import core.db
from core.crypto import Keyring, normalise_email
from core.errors import ConfigError

revision = 'c7d2e5a1f9b3'
down_revision = '409bbea4a4e4'
branch_labels = None
depends_on = None

_MEMBER = re.compile(r"^member:([0-9a-f]{32})$")
_VERSIONED = ('identifiers', 'field_state', 'suppression', 'directory')


def upgrade() -> None:
    for name in _VERSIONED:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('key_version', sa.Integer(), server_default='1',
                                          nullable=False))
    with op.batch_alter_table('subject_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kek_id', sa.String(length=16), nullable=True))
    op.create_table('digest_keys',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('key', sa.LargeBinary(), nullable=False),
    sa.Column('kek_id', sa.String(length=16), nullable=False),
    sa.Column('created_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_digest_keys'))
    )
    op.create_table('key_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kek_id', sa.String(length=16), nullable=False),
    sa.Column('digest_version', sa.Integer(), nullable=False),
    sa.Column('digest_floor', sa.Integer(), nullable=False),
    sa.Column('updated_at', core.db.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_state'))
    )
    _wrap_keys_and_key_refs(op.get_bind(), context.config.attributes.get("keyring"))
    with op.batch_alter_table('subject_keys', schema=None) as batch_op:
        batch_op.alter_column('kek_id', existing_type=sa.String(length=16), nullable=False)


def _wrap_keys_and_key_refs(conn: sa.Connection, keyring: Keyring | None) -> None:
    keys = sa.table('subject_keys', sa.column('subject_id'), sa.column('key'),
                    sa.column('kek_id'))
    refs = sa.table('system_refs', sa.column('system'), sa.column('ref'),
                    sa.column('subject_id'))
    ids = sa.table('identifiers', sa.column('subject_id'), sa.column('kind'),
                   sa.column('ciphertext'))
    found = conn.execute(sa.select(keys.c.subject_id, keys.c.key)).all()
    members = conn.execute(sa.select(refs.c.subject_id, refs.c.ref).where(
        refs.c.system == 'mailchimp', refs.c.ref.like('member:%'))).all()
    if not found and not members:
        return
    if keyring is None:
        raise ConfigError("this database holds unwrapped subject keys: migrate it with the "
                          "key-encryption key at hand (privasync db upgrade)")
    from core import keys as keystore

    keystore.fence(conn, keyring)  # digest key 1 := the installation secret, wrapped
    plain = {r.subject_id: r.key for r in found}
    for subject_id, key in plain.items():
        blob, kek = keyring.wrap(key, subject_id)
        conn.execute(keys.update().where(keys.c.subject_id == subject_id)
                     .values(key=blob, kek_id=kek))
    by_subject: dict[str, set[str]] = {}
    for r in members:
        by_subject.setdefault(r.subject_id, set()).add(r.ref)
    now = datetime.now(UTC)
    for subject_id, old in by_subject.items():
        conn.execute(refs.delete().where(refs.c.system == 'mailchimp',
                                         refs.c.subject_id == subject_id,
                                         refs.c.ref.in_(sorted(old))))
        key = plain.get(subject_id)
        hashes = {m.group(1) for m in (_MEMBER.match(r) for r in old) if m}
        for token in conn.execute(sa.select(ids.c.ciphertext).where(
                ids.c.subject_id == subject_id, ids.c.kind == 'email')).scalars():
            address = Keyring.decrypt(key, token) if key is not None else None
            if address is None:
                continue
            email = normalise_email(address.decode())
            md5 = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
            if md5 in hashes:
                conn.execute(sa.insert(core.db.system_refs).values(
                    system='mailchimp', ref=f"member:{keyring.keyed_ref('email', email)}",
                    subject_id=subject_id, created_at=now))


def downgrade() -> None:
    raise NotImplementedError("keys once wrapped are not unwrapped into the database again")
