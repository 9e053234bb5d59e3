"""An exchange's usage and cost, computed once in the recorder: the document
stores it and the metrics count it, so the two can never price differently.

- Usage is the response message's `usage` object as the upstream sent it. For a
  stream that is the folded message's: message_start's usage overwritten key by
  key with each non-null message_delta usage field (streaming.accumulator), so
  the final, cumulative counts, and every field either event carried.
- Cost is `PriceTable.cost_of(routed model, usage, served_model=the response's
  model)`: the served model prices a server-side fallback, `usage.iterations`
  each attempt, `usage.speed`/`usage.inference_geo` their multipliers.
- A Message Batches results download sums its succeeded results, each priced at
  the batch rate (recording.batch_results).
- An error answer (status ≥ 400, or none) has no usage and no cost.
- An OpenAI-format provider's answer (translated, its usage in Anthropic's
  terms): `servedModel` is the model the backend named; it is priced at that
  name when the price table knows it, else at the model it was asked for, else
  it is unpriced. A backend that reported no usage (`usage_unreported`) has no
  cost: its zeros are unknown, not free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recording.batch_results import batch_totals, is_batch_results
from storage.pricing import Cost, PriceTable
from streaming.exchange import Exchange
from streaming.usage import Usage, counts, raw_usage, response_message, usage_record

OPENAI_FORMAT = "openai"  # control.routing.ProviderFormat.OPENAI, as the journal carries it


@dataclass(frozen=True, slots=True)
class Priced:
    model: str | None  # the model the request is counted under (stats, metrics)
    served_model: str | None  # the response's `model`
    usage: dict[str, Any] | None  # the document's `usage`
    counts: Usage | None
    cost: Cost | None  # None: nothing billed to price (no usage)
    batch: dict[str, Any] | None = None  # the document's `batch`

    @property
    def unpriced(self) -> bool:
        return self.cost is not None and self.cost.unpriced

    @property
    def incomplete(self) -> bool:
        return self.cost is not None and not self.cost.unpriced and self.cost.incomplete

    def cost_document(self) -> dict[str, Any] | None:
        # Unpriced stays `cost: null` (with `unpriced: true`): never a $0 to sum.
        if self.cost is None or self.cost.unpriced:
            return None
        return self.cost.document()


def served_model(message: dict[str, Any] | None) -> str | None:
    model = message.get("model") if message else None
    return model if isinstance(model, str) else None


def price_exchange(exchange: Exchange, prices: PriceTable) -> Priced:
    routed = exchange.routed_model or exchange.model
    if is_batch_results(exchange):
        return _batch(exchange, prices, routed)
    message = response_message(exchange)
    served = priced_as = served_model(message)
    if exchange.provider_format == OPENAI_FORMAT:
        backend = exchange.backend_model
        served = backend or served
        priced_as = backend if backend and prices.resolve(backend) else routed
    raw = raw_usage(message) if exchange.status and exchange.status < 400 else None
    if raw is None:
        return Priced(routed, served, None, None, None)
    usage = counts(raw)
    if raw.get("usage_unreported") is True:
        return Priced(routed, served, usage_record(raw, usage), usage, None)
    cost = prices.cost_of(routed, raw, served_model=priced_as, batch=False)
    return Priced(routed, served, usage_record(raw, usage), usage, cost)


def _batch(exchange: Exchange, prices: PriceTable, routed: str | None) -> Priced:
    totals = batch_totals(exchange, prices)
    if totals is None:
        return Priced(routed, None, None, None, None)
    sole = totals.models[0] if len(totals.models) == 1 else None
    # The download names no model; a single-model batch is counted under it.
    return Priced(routed or sole, sole, totals.usage, totals.counts, totals.cost, totals.summary)
