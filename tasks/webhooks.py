"""Webhooks: every worker that consumes the `webhooks` queue runs a dispatcher thread (core.webhooks.dispatch) that
turns new job events into deliveries the moment they commit; `webhooks.deliver` makes one attempt. The beat tick
`webhooks.dispatch` is the net under the dispatchers. A lost message only delays: the claim's lease runs out and
the next round claims the delivery again."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from core import webhooks
from core.webhooks.dispatch import Dispatcher, dispatch, hand_over
from tasks import celery
from tasks.runtime import bank, tick

log = logging.getLogger(__name__)
QUEUE = "webhooks"


def send(claim: webhooks.Claim) -> None:
    celery.send_task("webhooks.deliver", args=[claim.delivery_id, claim.token], queue=QUEUE, routing_key=QUEUE,
                     retry=False)


@tick("webhooks.dispatch")
def dispatch_tick() -> int:
    return dispatch(bank(), send)


@celery.task(name="webhooks.deliver", soft_time_limit=60, time_limit=90)
def deliver(delivery_id: str, token: str) -> str:
    outcome = webhooks.send_delivery(bank(), delivery_id, token)
    if outcome.status == "failed":
        log.warning("webhook delivery %s failed for good: %s", delivery_id, outcome.answer)
    hand_over(outcome.claims, send)  # the endpoint's next deliveries, claimed as this attempt ended
    return outcome.status


class DispatcherStep(bootsteps.StartStopStep):
    """Runs a dispatcher in a worker that consumes the webhooks queue, started once its pool is up."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.dispatcher: Dispatcher | None = None

    def start(self, worker: Any) -> None:
        queues = worker.app.amqp.queues
        consumed = queues.consume_from if queues.consume_from is not None else queues
        if QUEUE in consumed:
            self.dispatcher = Dispatcher(bank(), send)
            self.dispatcher.start()
            log.info("webhook dispatcher started")

    def stop(self, worker: Any) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None


celery.steps["worker"].add(DispatcherStep)
