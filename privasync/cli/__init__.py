"""The command line: one module per command group, assembled in ``main``. The groups take
the settings, the container and the database from ``context``, print through ``output``
(one ``--format``, tables on stdout, progress on stderr), and every failure becomes one
line and an exit code (``errors``)."""
