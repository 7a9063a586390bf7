"""Celery configuration, from the one settings object. Delivery is at least once; effects are exactly once."""

import os

from kombu import Queue

from beat.schedule import beat_schedule_for
from core.jobs import QUEUES
from core.settings import Settings

_settings = Settings.from_env()

broker_url = _settings.broker_url
if broker_url.startswith("filesystem"):
    _folder = _settings.broker_folder
    for _sub in ("queue", "processed", "control"):
        (_folder / _sub).mkdir(parents=True, exist_ok=True)
    broker_transport_options = {
        "data_folder_in": str(_folder / "queue"),
        "data_folder_out": str(_folder / "queue"),
        "processed_folder": str(_folder / "processed"),
        "store_processed": False,
        "control_folder": str(_folder / "control"),
        "polling_interval": 0.1,
    }
    worker_enable_remote_control = False
elif broker_url.startswith(("amqp", "pyamqp")):  # RabbitMQ through py-amqp: amqp://, amqps://, pyamqp://
    # The queues are durable (kombu's Queue default) and task messages persistent (Celery's default delivery
    # mode), so they survive a broker restart. With publisher confirms a publish returns only once RabbitMQ has
    # taken the message (and raises if it refuses it), so an outbox row is deleted only for a message the broker
    # holds. The socket timeouts bound a publish to a broker that has stopped reading (a memory or disk alarm
    # blocks publishers indefinitely otherwise): it fails, and the relay sends the message later.
    broker_transport_options = {"confirm_publish": True, "read_timeout": 10, "write_timeout": 10}
    broker_heartbeat = 30  # workers notice a dead broker connection within a minute
else:
    broker_transport_options = {
        "visibility_timeout": 900,
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
        "health_check_interval": 15,
    }
broker_connection_retry_on_startup = True
# A worker whose broker goes away keeps reconnecting (with backoff, logging each try) for as long as it takes:
# an outage of any length delays work, never ends the worker.
broker_connection_max_retries = None
broker_connection_timeout = 3

task_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
task_acks_late = True
# On a lost broker connection, let running tasks finish: their messages are redelivered anyway (the ack cannot
# reach the old connection) and the database claim makes the second run a no-op. Cancelling them instead kills
# pool processes, and Celery 5.5's reconnect then trips over their closed pipes and exits ("Unrecoverable error:
# AttributeError: 'NoneType' object has no attribute 'fileno'", celery#9250): the chaos test saw it.
worker_cancel_long_running_tasks_on_connection_loss = False
task_reject_on_worker_lost = True
task_track_started = False
worker_prefetch_multiplier = 4
worker_hijack_root_logger = False
worker_send_task_events = False
task_default_queue = "default"
task_queues = [Queue(name, routing_key=name) for name in QUEUES]
task_routes = {
    "transfers.*": {"queue": "transfers"},
    "loans.service": {"queue": "default"},
    "loans.*": {"queue": "transfers"},
    "kyc.*": {"queue": "kyc"},
    "notify.*": {"queue": "notify"},
    "maintenance.*": {"queue": "default"},
    "reports.*": {"queue": "default"},
    "webhooks.deliver": {"queue": "webhooks"},
    "webhooks.dispatch": {"queue": "default"},
}
task_soft_time_limit = 300
task_time_limit = 360

timezone = "UTC"
enable_utc = True
beat_schedule = beat_schedule_for(_settings)
beat_schedule_filename = str(_settings.data_dir / "celerybeat-schedule")
if _settings.redis_url:
    # On the real stack a second beat waits for RedBeat's lock instead of ticking too. The ticks would be harmless
    # twice (each is a database-guarded claim); the lock just saves the work.
    beat_scheduler = "tasks.scheduler:SteadyRedBeatScheduler"
    redbeat_redis_url = _settings.redis_url
    redbeat_redis_options = {"socket_connect_timeout": 2, "socket_timeout": 5}
    redbeat_key_prefix = "bankq:redbeat:"
    # The lock outlives a beat that died by this long; a waiting beat polls it every beat_max_loop_interval, so it
    # takes over within about the lock time + 5 s.
    redbeat_lock_timeout = max(6, int(os.environ.get("BANKQ_BEAT_LOCK_SECONDS") or 30))
    beat_max_loop_interval = 5
