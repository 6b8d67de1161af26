"""Mailchimp Marketing API 3.0: the shapes privasync relies on, as published (see
``common`` for the sources and the version)."""
