"""The domain of privasync: canonical events, consent state, the ledger and the outbox.

Nothing here does network I/O or knows a vendor. See DESIGN.md.
"""
