"""Waiting for a server to answer, for the programs of this package (``source`` inlines this file into each: standard
library only, no ``from __future__``)."""

import time
import urllib.request


def wait_for(attempt, what, attempts=60, delay=10):
    """The result of ``attempt()`` once it stops raising ``OSError`` (refused, timed out, an HTTP error status), tried
    ``attempts`` times ``delay`` seconds apart; then the program exits saying ``what`` is not reachable."""
    for _ in range(attempts):
        try:
            return attempt()
        except OSError:
            time.sleep(delay)
    raise SystemExit(f"{what} is not reachable")


def wait_for_url(url, what, attempts=60, delay=10):
    """Wait until a GET of ``url`` succeeds (10 seconds a try)."""
    wait_for(lambda: urllib.request.urlopen(url, timeout=10).close(), f"{what} at {url}", attempts, delay)
