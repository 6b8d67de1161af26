"""The HTTP face: the Starlette app, the webhook receivers, health and metrics, and the
admin API. Each handler reads and checks its input, calls privasync.app, and answers."""
