"""Request shape of POST /transfers/batch: up to 1000 single-transfer bodies, posted at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, pre_load, validate

from api.schemas import Strict, TransferIn
from core.transfers.batches import MAX_ITEMS


class BatchItemIn(TransferIn):
    """A single transfer's body without execute_at: a batch posts at once."""

    class Meta(Strict.Meta):
        exclude = ("execute_at",)

    @pre_load
    def _refuse_execute_at(self, data: Any, **_: object) -> Any:
        if isinstance(data, Mapping) and "execute_at" in data:
            raise ValidationError({"execute_at": ["Not allowed in a batch; schedule single transfers instead."]})
        return data


class TransferBatchIn(Strict):
    items = fields.List(
        fields.Nested(BatchItemIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
        metadata={"description": f"1 to {MAX_ITEMS} transfers, posted in this order."},
    )
    atomic = fields.Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "true: all items post or none does. false (default): each item posts on its own."},
    )
