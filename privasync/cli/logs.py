"""Logging for every command: JSON lines on stderr, redacted, the vendor clients kept quiet."""

from __future__ import annotations

import logging
import sys
from typing import TextIO


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test runner or a
    daemoniser may replace it after logging was configured)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for our logs and the libraries' alike, every line (exception
    texts included) passed through the redaction processor last (privasync/app/redaction.py)."""
    import structlog  # here, not at import: `privasync --help` need not wait for it

    from privasync.app.redaction import redact

    stamp: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(),
                           *stamp]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The vendor clients log request and response bodies (addresses, names) at DEBUG:
    # never let them, whatever our own level.
    for noisy in ("hubspot", "urllib3", "simple_salesforce", "requests", "aiosmtpd",
                  "mail.log", "smtplib"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    # pika tells of every RabbitMQ connection opened and closed (each readiness probe), and
    # logs an ERROR with a traceback whenever RabbitMQ drops an idle sender's connection
    # (missed heartbeats), which the next send reopens. What matters is reported by
    # Dramatiq (a consumer's lost connection) and by us (privasync_enqueue_failures_total).
    logging.getLogger("pika").setLevel(logging.DEBUG if root.level <= logging.DEBUG
                                       else logging.CRITICAL)
    structlog.configure(
        processors=[*stamp, structlog.processors.format_exc_info, redact,
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr))
