"""Transfers, deposits and withdrawals: accepted at once, posted to the ledger by a worker."""

from core.transfers.batch_posting import post_transfer_batch
from core.transfers.batches import BatchRequest, request_transfer_batch
from core.transfers.posting import post_transfer_jobs, post_transfer_jobs_many
from core.transfers.requests import (
    MovementRequest,
    TransferRequest,
    cancel_transfer,
    confirm_transfer,
    get_transfer,
    release_due_scheduled,
    request_movement,
    request_transfer,
)
from core.transfers.reversals import ReversalRequest, request_reversal

__all__ = [
    "BatchRequest",
    "MovementRequest",
    "ReversalRequest",
    "TransferRequest",
    "cancel_transfer",
    "confirm_transfer",
    "get_transfer",
    "post_transfer_batch",
    "post_transfer_jobs",
    "post_transfer_jobs_many",
    "release_due_scheduled",
    "request_movement",
    "request_reversal",
    "request_transfer",
    "request_transfer_batch",
]
