"""The demo harness: privasync wired to the vendor emulators on loopback (``stack``), used
by ``privasync demo`` (``run``), the end-to-end tests and the benchmarks."""
