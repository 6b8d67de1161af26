"""The consent rule: newest wins, withdrawals win ties, grants need evidence."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.consent import Verdict, resolve
from core.model import Channel, ConsentState, ConsentStatus, Evidence

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVIDENCE = Evidence(source="web", method="form", wording_version="v3", proof_reference="sub-1")
G, W = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN


def state(status: ConsentStatus, at: datetime, evidence: Evidence | None = None) -> ConsentState:
    return ConsentState("offers", Channel.EMAIL, status, at, "test", evidence)


def test_a_first_withdrawal_applies_without_evidence():
    assert resolve(None, state(W, T0), True)[0] is Verdict.APPLY


def test_a_grant_without_evidence_is_flagged_not_applied():
    assert resolve(None, state(G, T0), True) == (Verdict.NO_EVIDENCE, None)
    later = state(G, T0 + timedelta(days=1))
    assert resolve(state(W, T0), later, True) == (Verdict.NO_EVIDENCE, None)


def test_a_grant_on_a_non_consent_basis_needs_no_evidence():
    assert resolve(None, state(G, T0), consent_required=False)[0] is Verdict.APPLY


def test_an_older_grant_never_undoes_a_newer_withdrawal():
    older = state(G, T0 - timedelta(seconds=1), EVIDENCE)
    assert resolve(state(W, T0), older, True) == (Verdict.STALE, None)


def test_a_newer_evidenced_grant_replaces_a_withdrawal():
    newer = state(G, T0 + timedelta(seconds=1), EVIDENCE)
    assert resolve(state(W, T0), newer, True) == (Verdict.APPLY, newer)


def test_withdrawal_beats_a_grant_at_the_same_instant():
    assert resolve(state(G, T0, EVIDENCE), state(W, T0), True)[0] is Verdict.APPLY
    assert resolve(state(W, T0), state(G, T0, EVIDENCE), True)[0] is Verdict.STALE


def test_the_same_status_again_is_unchanged_and_only_moves_time_forward():
    later = state(W, T0 + timedelta(hours=1))
    assert resolve(state(W, T0), later, True) == (Verdict.UNCHANGED, later)
    assert resolve(later, state(W, T0), True) == (Verdict.UNCHANGED, None)


decisions = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from([G, W]), st.booleans()), min_size=1,
    max_size=12)


def fold(events):  # type: ignore[no-untyped-def]
    current = None
    for minute, status, has_evidence in events:
        incoming = state(status, T0 + timedelta(minutes=minute),
                         EVIDENCE if has_evidence else None)
        _, stored = resolve(current, incoming, True)
        current = stored or current
    return current


def key(s):  # type: ignore[no-untyped-def]
    return None if s is None else (s.status, s.occurred_at)


@given(decisions, st.randoms())
def test_state_converges_whatever_the_delivery_order(events, rnd):  # type: ignore[no-untyped-def]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert key(fold(events)) == key(fold(shuffled))


@given(decisions)
def test_a_withdrawal_at_the_latest_instant_always_ends_withdrawn(events):  # type: ignore[no-untyped-def]
    latest = max(m for m, _, _ in events)
    final = fold([*events, (latest, W, False)])
    assert final is not None and final.status is W
