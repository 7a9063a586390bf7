"""Webhooks: the dispatch tick (queue `default`) turns new job events into deliveries and claims the due ones;
`webhooks.deliver` (queue `webhooks`) makes one attempt. A lost message only delays: the claim's lease runs out
and the next tick claims the delivery again."""

from __future__ import annotations

import logging

from core import webhooks
from tasks import celery
from tasks.runtime import bank, tick

log = logging.getLogger(__name__)
QUEUE = "webhooks"


@tick("webhooks.dispatch")
def dispatch() -> int:
    b = bank()
    webhooks.fan_out(b)
    claims = webhooks.claim_due(b)
    for claim in claims:
        try:
            celery.send_task("webhooks.deliver", args=[claim.delivery_id, claim.token], queue=QUEUE,
                             routing_key=QUEUE, retry=False)
        except Exception as exc:
            log.warning("webhooks: could not publish deliveries (%s); they are claimed again when their lease ends",
                        exc)
            break
    return len(claims)


@celery.task(name="webhooks.deliver", soft_time_limit=60, time_limit=90)
def deliver(delivery_id: str, token: str) -> str:
    outcome = webhooks.send_delivery(bank(), delivery_id, token)
    if outcome.status == "failed":
        log.warning("webhook delivery %s failed for good: %s", delivery_id, outcome.answer)
    return outcome.status
