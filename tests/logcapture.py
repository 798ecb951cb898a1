"""What the handlers log, as Lambda would ship it to CloudWatch.

Powertools' Logger writes JSON lines to a stream it took when the handler module was imported, so
pytest's capsys does not see them: ``powertools_logs()`` points every Powertools handler in the
process at a buffer for the duration of a block.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def powertools_logs(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Every Powertools log line written in the block, at ``level`` and above, in the buffer yielded."""
    buffer = io.StringIO()
    restore: list[tuple[logging.Logger, logging.StreamHandler[io.StringIO], int]] = []
    for candidate in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(candidate, logging.Logger) or not getattr(candidate, "powertools_handler", None):
            continue
        for handler in candidate.handlers:
            if isinstance(handler, logging.StreamHandler):
                # Not setStream: it flushes the old stream, which may be a capture pytest has closed.
                handler._kudos_previous_stream = handler.stream  # type: ignore[attr-defined]
                handler.stream = buffer
                restore.append((candidate, handler, candidate.level))
                candidate.setLevel(level)
    try:
        yield buffer
    finally:
        for candidate, handler, previous_level in restore:
            handler.stream = handler._kudos_previous_stream  # type: ignore[attr-defined]
            candidate.setLevel(previous_level)
