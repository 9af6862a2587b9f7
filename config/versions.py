"""Every chart version, chart repository and image tag the platform installs: the only place that names one.

Chart pins match the upstream data in ``../shared/upstream/`` (see its ``SOURCES.md``); a test checks that
each pinned chart version equals the upstream ``Chart.yaml``. Never ``latest``.
"""

from typing import NamedTuple


class Chart(NamedTuple):
    """A pinned Helm chart: its name in the repository, the repository URL and the exact version."""

    name: str
    repo: str
    version: str


VOLCANO = Chart("volcano", "https://volcano-sh.github.io/helm-charts", "1.15.1")
# The Volcano chart takes one tag for all of its images (basic.image_tag_version).
VOLCANO_IMAGE_TAG = "v1.15.1"

CHARTS: dict[str, Chart] = {chart.name: chart for chart in (VOLCANO,)}
