"""The test suite: one folder per part of the code (core, connectors, workers, api for
privasync/app, web and cli, emulators, deploy), the vendor contracts, the end-to-end
stacks (e2e) and the fault cases (faults); ``python -m tests.loaded`` runs it beside busy
processes."""
