"""The admin HTTP API under ``/api/v1/``: bearer tokens with scopes, declared routes,
and the OpenAPI document built from the same declarations (R21)."""
