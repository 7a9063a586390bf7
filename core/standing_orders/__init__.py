"""Standing orders: a repeating transfer, each due date turned into exactly one transfer through the API's path.

Every occurrence is requested with `core.transfers.request_transfer` (the customer's own checks, limits and
idempotency), with the order's owner as the caller and the key `standing-order:{order}:{date}`, inside the
transaction that holds the order (FOR UPDATE SKIP LOCKED) and writes the occurrence row: the transfer, its job,
its outbox message and the occurrence commit together or not at all, and the unique (order, date) key is the
last guard. The transfer then posts through the normal queue and ledger; a later tick settles the occurrence
from its job (a receipt, or `transfer_failed` and no retry: the next occurrence is simply the next date)."""

from core.standing_orders.occurrences import TickReport, run_due_standing_orders, settle_occurrences
from core.standing_orders.orders import (
    NewStandingOrder,
    cancel_standing_order,
    create_standing_order,
    get_standing_order,
    list_standing_orders,
)

__all__ = [
    "NewStandingOrder",
    "TickReport",
    "cancel_standing_order",
    "create_standing_order",
    "get_standing_order",
    "list_standing_orders",
    "run_due_standing_orders",
    "settle_occurrences",
]
