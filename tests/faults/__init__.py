"""The fault suite: privasync under outages, crashes and vendor misbehaviour (a killed
worker, a flushed Redis, a vendor answering 5xx or hanging), each case driven by the
harness in ``harness``."""
