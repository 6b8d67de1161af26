"""The composition root (settings in, everything wired out) and the use cases both faces
call: requests, the access bundle, evidence and breach scope, system checks, the
scheduler's pollers. Nothing here speaks HTTP or parses a command line."""
