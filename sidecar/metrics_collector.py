"""/metrics: the database's figures (read at scrape time, cached) and this process tree's own.

The database's figures are the same on every host, so each scraped process reports
them: aggregate with max() across instances, never sum(). Labels are fixed sets:
`status` the job and document statuses (sidecar.states), `state` live|silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from sidecar import __version__, metrics
from sidecar.health_checks import CachedReading
from sidecar.states import DOCUMENT_STATUSES, JOB_STATUSES


class DeliveryCollector:
    """Gauges from MySQL through `CachedReading`; a database that cannot be read gives
    formrelay_database_up 0 and nothing else of its own (the scrape still answers)."""

    def __init__(self, reading: CachedReading, backlog_seconds: float) -> None:
        self.reading, self.backlog_seconds = reading, backlog_seconds

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("formrelay_build_info", "The running sidecar's version",
                                 labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        try:
            reading = self.reading.get()
        except Exception:
            yield GaugeMetricFamily("formrelay_database_up", "1 when the database answered",
                                    value=0)
            return
        yield GaugeMetricFamily("formrelay_database_up", "1 when the database answered",
                                value=1)
        yield _by_status("formrelay_jobs", "Jobs by status", reading.jobs, JOB_STATUSES)
        yield _by_status("formrelay_documents", "Documents by status", reading.documents,
                         DOCUMENT_STATUSES)
        s = reading.state
        yield GaugeMetricFamily(
            "formrelay_oldest_waiting_seconds", "Age of the oldest job not yet delivered"
            " (0 when none waits)", value=s.oldest_waiting_seconds or 0.0)
        yield GaugeMetricFamily("formrelay_delivery_paused", "1 while delivery is paused",
                                value=int(s.paused))
        yield GaugeMetricFamily("formrelay_delivery_needs_person", "1 while a 401/403 pause"
                                " waits for a person (probes cannot end it)",
                                value=int(s.needs_person))
        workers = GaugeMetricFamily("formrelay_workers", "Worker processes by heartbeat state",
                                    labels=["state"])
        workers.add_metric(["live"], s.live_workers)
        workers.add_metric(["silent"], len(s.silent_workers))
        yield workers
        yield GaugeMetricFamily(
            "formrelay_delivery_severity", "The delivery judgement of /healthz and"
            " `formrelay status`: 0 OK, 1 WARNING, 2 CRITICAL",
            value=int(s.severity(self.backlog_seconds)))


def _by_status(name: str, doc: str, counts: dict[str, int], statuses: Iterable[Any]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=["status"])
    for status in statuses:  # every status, zeros included, and only these
        family.add_metric([str(status)], counts.get(str(status), 0))
    return family


class _Scrape:
    def __init__(self, collectors: list[Any]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def scrape(reading: CachedReading, backlog_seconds: float) -> tuple[bytes, str]:
    """The text exposition of everything this process reports, and its content type."""
    parts = [*metrics.this_process_collectors(), DeliveryCollector(reading, backlog_seconds)]
    return generate_latest(_Scrape(parts)), CONTENT_TYPE_LATEST
