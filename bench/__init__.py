"""``make bench``: privasync's throughput and propagation latency on the vendor emulators.

Runs the real stack (``privasync.demo.stack.start_stack``) once per backend: the embedded
default (SQLite, in-process broker) and Redis broker + PostgreSQL, and reports
them side by side. See BENCHMARKS.md for what is measured and how to read it.
Every socket it opens is on 127.0.0.1.
"""
