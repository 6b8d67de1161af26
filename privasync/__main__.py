"""``python -m privasync``: the same as the ``privasync`` command."""

from privasync.cli.main import main

main()
