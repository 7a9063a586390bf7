"""Prometheus metrics: request counts and latency here, jobs and queues read from the database at scrape."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from core import jobs, webhooks
from core.bank import Bank
from core.kyc.documents import processing_figures

REQUESTS = Counter("bankq_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "bankq_http_request_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class JobsCollector:
    """Job and queue gauges come from PostgreSQL, the truth, so any API process reports the same."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank

    def collect(self):  # type: ignore[no-untyped-def]
        by_status = GaugeMetricFamily("bankq_jobs", "Jobs by kind and status", labels=["kind", "status"])
        for kind, status, n in jobs.counts_by_kind_status(self.bank.db):
            by_status.add_metric([kind, status], n)
        yield by_status
        depth = GaugeMetricFamily("bankq_queue_depth", "Jobs waiting per queue", labels=["queue"])
        age = GaugeMetricFamily("bankq_queue_oldest_age_seconds", "Age of the oldest waiting job", labels=["queue"])
        for queue, figures in jobs.queue_depths(self.bank.db).items():
            depth.add_metric([queue], figures["depth"])
            age.add_metric([queue], figures["oldest_age_seconds"])
        yield depth
        yield age
        documents = GaugeMetricFamily("bankq_kyc_documents", "KYC documents by outcome", labels=["status"])
        seconds = GaugeMetricFamily(
            "bankq_kyc_processing_seconds_sum", "Worker time spent reading documents", labels=["status"]
        )
        timed = GaugeMetricFamily(
            "bankq_kyc_processing_seconds_count", "Documents with a recorded reading time", labels=["status"]
        )
        for status, figures in processing_figures(self.bank).items():
            documents.add_metric([status], figures["count"])
            seconds.add_metric([status], figures["seconds_sum"])
            timed.add_metric([status], figures["timed"])
        yield documents
        yield seconds
        yield timed
        yield from _webhook_metrics(webhooks.delivery_figures(self.bank))


def _webhook_metrics(figures: dict) -> list[GaugeMetricFamily]:
    deliveries = GaugeMetricFamily("bankq_webhook_deliveries", "Webhook deliveries by status", labels=["status"])
    for status in ("pending", "sending", "succeeded", "failed"):
        deliveries.add_metric([status], figures["by_status"].get(status, 0))
    attempts = GaugeMetricFamily("bankq_webhook_attempts", "Webhook delivery attempts by outcome", labels=["outcome"])
    for outcome, n in figures["attempts"].items():
        attempts.add_metric([outcome], n)
    lag = GaugeMetricFamily("bankq_webhook_delivery_lag_seconds",
                            "How long the oldest due webhook delivery has been waiting")
    lag.add_metric([], figures["oldest_due_seconds"])
    return [deliveries, attempts, lag]


def init_metrics(app: Flask, bank: Bank) -> None:
    collector = JobsCollector(bank)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        if hasattr(g, "started"):
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - g.started)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        out = generate_latest(registry) + generate_latest(_single(collector))
        return Response(out, mimetype=CONTENT_TYPE_LATEST)


def _single(collector: JobsCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return registry
