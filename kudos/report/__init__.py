"""`kudos report`: one self-contained HTML file with active users, segments and campaigns.

- ``kudos.report.model``: the data a report shows (plain dataclasses, and the JSON shapes the routes
  answer with for active users and a campaign's report).
- ``kudos.report.html``: ``render_html(data) -> str``, pure: no I/O, no clock; charts are inline SVG
  drawn by ``kudos.report.svg``, every series element carries a stable ``data-series`` attribute and
  every user-provided string is escaped. The page loads nothing (no script, no network).
- ``kudos.report.gather``: ``gather_report(store, settings, segments, now, ...)`` reads the data
  from a Storage through the domain functions (no HTTP), and ``write_report(path, ...)`` gathers,
  renders and writes the file (what `kudos report` and the demo call).
"""

from __future__ import annotations
