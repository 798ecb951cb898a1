"""Run the Lambda handlers on a laptop: `kudos serve`, `kudos invoke` and the DynamoDB they talk to.

Nothing here ships in the Lambda package's code path: handlers never import ``kudos.local``.
Heavy imports (moto, boto3) happen inside functions so that ``kudos --help`` stays fast.
"""

from __future__ import annotations


class LocalError(Exception):
    """A problem the user can fix (no Java, no template, a bad option); the CLI prints only its message."""
