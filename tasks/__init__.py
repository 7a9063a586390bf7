"""The Celery app. Tasks are transport only: decode ids, call core, retry policy."""

from celery import Celery

celery = Celery(
    "bankq",
    include=["tasks.transfers", "tasks.kyc", "tasks.maintenance", "tasks.notify", "tasks.schedules",
             "tasks.webhooks", "tasks.reports", "tasks.loans"],
)
celery.config_from_object("celeryconfig")
app = celery
