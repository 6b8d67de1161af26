"""The command line: one module per command group (requests, keys, jobs, health, config,
restore-check, smoke), assembled in ``main``; every failure becomes one line and an exit
code (``errors``)."""
