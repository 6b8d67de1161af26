"""privasync as it runs: the composition root and use cases (``app``), the HTTP face
(``web``), the command line (``cli``) and the demo harness (``demo``), built on the
domain in ``core``, the vendor connectors in ``connectors`` and the workers in ``workers``."""
