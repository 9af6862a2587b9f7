"""PromQL building blocks: selectors, thresholds, percentiles, ratios of rates.

Pure functions with no imports of the platform's own: the alert packs and recording rules (``rules``), the dashboards
(``dashboards``) and each engine's alerts and dashboard row (``components.serving.engines``) build their queries with
them, so alerts and panels measure the same thing.
"""

from __future__ import annotations

RATE = "5m"


def num(value: float) -> str:
    """A threshold as PromQL writes it: 30.0 -> 30, 0.05 -> 0.05."""
    return f"{value:g}"


def selector(metric: str, **matchers: str) -> str:
    """``metric{k="v",...}``; a value starting with ``~`` is a regex matcher, with ``!`` a negative one, with ``!~`` a
    negative regex."""
    parts = []
    for label, value in matchers.items():
        op = "="
        if value.startswith("!~"):
            op, value = "!~", value[2:]
        elif value.startswith("~"):
            op, value = "=~", value[1:]
        elif value.startswith("!"):
            op, value = "!=", value[1:]
        parts.append(f'{label}{op}"{value}"')
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def p95(bucket_metric: str, sel: dict[str, str], by: str = "le", window: str = RATE) -> str:
    """The 95th percentile of a histogram over the series ``sel`` selects (``by`` must include ``le``)."""
    return f"histogram_quantile(0.95, sum by ({by}) (rate({selector(bucket_metric, **sel)}[{window}])))"


def ratio_of_rates(
    num_metric: str, num_sel: dict[str, str], den_metric: str, den_sel: dict[str, str], by: str = "", window: str = RATE
) -> str:
    """``sum(rate(num)) / sum(rate(den))``, optionally ``by`` some labels."""
    agg = f"sum by ({by})" if by else "sum"
    return (
        f"{agg} (rate({selector(num_metric, **num_sel)}[{window}])) / "
        f"{agg} (rate({selector(den_metric, **den_sel)}[{window}]))"
    )
