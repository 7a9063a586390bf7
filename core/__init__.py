"""The bank itself: money, ledger, jobs, idempotency and the outbox. No web or queue framework in here."""
