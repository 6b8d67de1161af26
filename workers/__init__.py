"""The processes around core: the Dramatiq broker and dispatch actor, the worker, applier and
scheduler loops with their leases and heartbeats, retry backoff, and the metrics."""
