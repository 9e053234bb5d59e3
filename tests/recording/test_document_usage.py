"""The document's usage and cost, through the recorder's path (journal record →
fold → price → document): nothing the upstream sent is dropped, counters are
always ints, cost comes from the served model with its modifiers, and a Message
Batches results download is priced at the batch rate."""

from __future__ import annotations

import copy
import json
import marshal
from typing import Any

import pytest

from recording.documents import build_record_document
from recording.handoff import encode_exchange
from recording.journal import Position, Record
from recording.priced import Priced
from storage.pricing import PriceTable
from streaming.exchange import Exchange, Outcome
from tests.fixtures import message_bytes, stream_bytes

PRICES = PriceTable.load()
# Per MTok: $3 in / $15 out while the prompt stays within 200,000 tokens.
SONNET = "claude-sonnet-4-5"
HAIKU = "claude-haiku-4-5"  # $1 / $5, untiered
M = 1_000_000
K100 = 100_000

# Every usage field of 2026 plus one nobody knows yet (values as the docs show them).
FULL_USAGE: dict[str, Any] = {
    "input_tokens": 1200,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 5000,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 900,
    "output_tokens_details": {"thinking_tokens": 640},
    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0},
    "service_tier": "standard",
    "speed": "standard",
    "inference_geo": "global",
    "iterations": [
        {
            "type": "message",
            "model": SONNET,
            "input_tokens": 1200,
            "output_tokens": 900,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 5000,
        }
    ],
    "fallback_credit": {"status": "not_applicable"},
    "future_field": {"x": [1]},
}
# Where each lands in a stream: message_start carries the input side, the
# message_delta the cumulative output side.
START_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "service_tier",
    "speed",
    "inference_geo",
)


def message(usage: dict[str, Any], model: str = SONNET) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hi — ü"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def sse_of(msg: dict[str, Any]) -> bytes:
    usage = msg["usage"]
    start = {**msg, "content": [], "stop_reason": None, "usage": {}}
    start["usage"] = {k: usage[k] for k in START_KEYS if k in usage} | {"output_tokens": 1}
    delta_usage = {k: v for k, v in usage.items() if k not in START_KEYS}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": msg["content"][0]["text"]},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": delta_usage,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
        for name, data in events
    )


def record_of(
    response: bytes,
    *,
    sse: bool = False,
    status: int = 200,
    method: str = "POST",
    path: str = "/v1/messages",
    model: str | None = SONNET,
    routed: str | None = None,
    clipped: bool = False,
) -> Record:
    body = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    raw = json.dumps(body).encode() if method == "POST" else b""
    exchange = Exchange(
        method=method,
        path=path,
        query="",
        request_headers=[("content-type", "application/json")],
        request_body=raw,
        request_json=body if method == "POST" else None,
        model=model if method == "POST" else None,
        routed_model=routed,
    )
    exchange.status, exchange.is_sse = status, sse
    exchange.response_headers = [
        ("content-type", "text/event-stream" if sse else "application/json")
    ]
    exchange.response_chunks = [response[i : i + 11] for i in range(0, len(response), 11)]
    exchange.response_bytes = len(response)
    exchange.response_clipped = clipped
    exchange.finish(Outcome.COMPLETED if status < 400 else Outcome.UPSTREAM_ERROR)
    meta = marshal.loads(marshal.dumps(encode_exchange(exchange)))
    return Record("w1", Position(1, 0), Position(1, 1), meta, raw, response)


def build(record: Record) -> tuple[dict[str, Any], list[Priced | None]]:
    seen: list[Priced | None] = []
    document = build_record_document(
        record, PRICES, lambda exchange, judged, priced: seen.append(priced)
    )
    return document, seen


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
def test_every_usage_field_is_kept_in_the_usage_and_the_body(sse: bool) -> None:
    msg = message(copy.deepcopy(FULL_USAGE))
    payload = sse_of(msg) if sse else json.dumps(msg).encode()
    document, _ = build(record_of(payload, sse=sse))
    assert document["usage"] == FULL_USAGE
    stored = json.loads(document["response"]["body"])
    assert stored["usage"] == FULL_USAGE
    assert stored["content"] == msg["content"]
    # 1200 + 900 + 300 + 5000: thinking is a part of output, not added.
    assert document["tokens"] == 7400
    assert document["servedModel"] == SONNET
    expected = PRICES.cost_of(SONNET, FULL_USAGE, served_model=SONNET)
    assert expected is not None and document["cost"] == expected.document()


# The 2026 stream fixtures (tests/fixtures/streams/README.md): each stream folds
# into its JSON, and the document keeps that JSON's usage whole either way.
FIXTURES_2026 = ("all_fields", "omitted_thinking", "fallback_switch", "compaction")


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("name", FIXTURES_2026)
def test_the_2026_fixtures_keep_their_usage_and_price_the_served_model(
    name: str, sse: bool
) -> None:
    expected = json.loads(message_bytes(name))
    payload = stream_bytes(name) if sse else message_bytes(name)
    # Asked for another model: the one that answered is priced.
    document, _ = build(record_of(payload, sse=sse, model="claude-fable-5"))
    assert document["usage"] == expected["usage"]
    assert document["servedModel"] == expected["model"] != document["model"]
    cost = PRICES.cost_of("claude-fable-5", expected["usage"], served_model=expected["model"])
    assert cost is not None
    assert document["cost"] == (None if cost.unpriced else cost.document())
    assert document["costIncomplete"] is (cost.incomplete and not cost.unpriced)


def test_the_stream_usage_is_the_final_cumulative_one() -> None:
    msg = message({"input_tokens": 10, "output_tokens": 77, "service_tier": "priority"})
    document, _ = build(record_of(sse_of(msg), sse=True))
    # message_start said output_tokens 1; the message_delta's cumulative 77 wins.
    assert document["usage"]["output_tokens"] == 77
    assert document["usage"]["service_tier"] == "priority"


GARBAGE = [None, "12", -5, True, 1.5, 2**64, {"n": 1}]


@pytest.mark.parametrize("bad", GARBAGE, ids=repr)
def test_counters_are_always_non_negative_ints(bad: object) -> None:
    usage = {
        "input_tokens": bad,
        "output_tokens": 40,
        "cache_read_input_tokens": bad,
        "cache_creation_input_tokens": 30,
        "cache_creation": {"ephemeral_5m_input_tokens": bad, "ephemeral_1h_input_tokens": 10},
        "speed": bad,
    }
    document, _ = build(record_of(json.dumps(message(usage)).encode()))
    stored = document["usage"]
    assert stored["input_tokens"] == 0 and stored["cache_read_input_tokens"] == 0
    assert stored["output_tokens"] == 40
    # The unsplit remainder of the 30 written counts as 5-minute writes: 30 - 10.
    assert stored["cache_creation"] == {
        "ephemeral_5m_input_tokens": 20,
        "ephemeral_1h_input_tokens": 10,
    }
    assert stored["speed"] == bad  # not a counter: kept as sent
    assert document["tokens"] == 40 + 30


def test_missing_counters_are_filled_and_sent_ints_kept_as_sent() -> None:
    only_total = {"output_tokens": 5, "cache_creation_input_tokens": 7}
    document, _ = build(record_of(json.dumps(message(only_total)).encode()))
    assert document["usage"] == {
        "output_tokens": 5,
        "cache_creation_input_tokens": 7,
        "input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 0},
    }
    only_split = {"cache_creation": {"ephemeral_1h_input_tokens": 4}}
    document, _ = build(record_of(json.dumps(message(only_split)).encode()))
    assert document["usage"]["cache_creation_input_tokens"] == 4
    assert document["usage"]["cache_creation"]["ephemeral_5m_input_tokens"] == 0
    inconsistent = {
        "cache_creation_input_tokens": 100,
        "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 20},
    }
    document, _ = build(record_of(json.dumps(message(inconsistent)).encode()))
    assert document["usage"]["cache_creation_input_tokens"] == 100
    assert document["usage"]["cache_creation"] == inconsistent["cache_creation"]


def test_cost_is_the_cost_document_with_its_modifiers_and_the_same_for_the_metrics() -> None:
    usage = {"input_tokens": K100, "output_tokens": M, "service_tier": "standard"}
    document, seen = build(record_of(json.dumps(message(usage)).encode()))
    # 0.1M in x $3 + 1M out x $15 = 0.30 + 15.00 = 15.30 (not a batch: full rate).
    assert document["cost"]["usd"] == pytest.approx(15.3)
    assert document["cost"]["breakdown"]["input"] == pytest.approx(0.3)
    assert document["cost"]["breakdown"]["output"] == pytest.approx(15.0)
    assert document["cost"]["pricedAs"] == SONNET
    assert document["cost"]["modifiers"] == {}
    assert document["unpriced"] is False and document["costIncomplete"] is False
    (priced,) = seen
    assert priced is not None and priced.cost is not None
    assert priced.cost.document() == document["cost"]
    assert priced.counts is not None and priced.counts.total == document["tokens"] == K100 + M


def test_the_served_model_prices_the_response() -> None:
    usage = {"input_tokens": K100, "output_tokens": M}
    answered_by_haiku = json.dumps(message(usage, model=HAIKU + "-20251001")).encode()
    document, _ = build(record_of(answered_by_haiku, model=SONNET))
    assert document["model"] == document["routedModel"] == document["originalModel"] == SONNET
    assert document["servedModel"] == HAIKU + "-20251001"
    # Priced at Haiku: 0.1M x $1 + 1M x $5 = 5.10 (Sonnet would be 15.30).
    assert document["cost"]["usd"] == pytest.approx(5.1)
    routed, _ = build(record_of(json.dumps(message(usage)).encode(), model="x", routed=SONNET))
    assert routed["model"] == routed["routedModel"] == SONNET and routed["originalModel"] == "x"
    assert routed["servedModel"] == SONNET


def test_an_attempt_on_an_unknown_model_makes_the_cost_incomplete() -> None:
    usage = {
        "input_tokens": 1000,
        "output_tokens": 10,
        "iterations": [
            {"type": "message", "model": SONNET, "input_tokens": K100, "output_tokens": 0},
            {"type": "message", "model": "mystery-9", "input_tokens": 1000, "output_tokens": 10},
        ],
    }
    document, seen = build(record_of(json.dumps(message(usage, model="mystery-9")).encode()))
    # The Sonnet attempt: 0.1M x $3 = 0.30, a lower bound.
    assert document["cost"]["usd"] == pytest.approx(0.3)
    assert document["costIncomplete"] is True and document["unpriced"] is False
    assert document["cost"]["incomplete"] is True and document["cost"]["notes"]
    assert seen[0] is not None and seen[0].incomplete


def test_unknown_model_is_unpriced_and_errors_have_no_cost() -> None:
    usage = {"input_tokens": 10, "output_tokens": 10}
    document, _ = build(
        record_of(json.dumps(message(usage, "mystery-9")).encode(), model="mystery-9")
    )
    assert document["cost"] is None and document["unpriced"] is True
    assert document["costIncomplete"] is False and document["usage"]["input_tokens"] == 10
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    document, _ = build(record_of(json.dumps(error).encode(), status=529))
    assert document["usage"] is None and document["cost"] is None and document["tokens"] == 0
    assert document["unpriced"] is False and document["costIncomplete"] is False


# ---- Message Batches results --------------------------------------------------------
RESULTS = "/v1/messages/batches/msgbatch_01/results"


def line(custom_id: str, kind: str, msg: dict[str, Any] | None = None) -> bytes:
    result: dict[str, Any] = {"type": kind}
    if msg is not None:
        result["message"] = msg
    if kind == "errored":
        result["error"] = {"type": "error", "error": {"type": "api_error", "message": "x"}}
    return json.dumps({"custom_id": custom_id, "result": result}).encode() + b"\n"


def results_record(*lines: bytes, clipped: bool = False) -> Record:
    return record_of(b"".join(lines), method="GET", path=RESULTS, model=None, clipped=clipped)


def test_batch_results_are_summed_at_the_batch_rate() -> None:
    body = (
        line("a", "succeeded", message({"input_tokens": K100, "output_tokens": M})),
        line("b", "succeeded", message({"input_tokens": M, "output_tokens": 0}, HAIKU)),
        line("c", "errored"),
        line("d", "expired"),
    )
    document, seen = build(results_record(*body))
    # Half price: (0.1M x $3 + 1M x $15) x 0.5 + 1M x $1 x 0.5 = 7.65 + 0.50 = 8.15
    assert document["cost"]["usd"] == pytest.approx(8.15)
    assert document["cost"]["modifiers"] == {"batch": 0.5}
    assert document["batch"] == {
        "results": 4,
        "succeeded": 2,
        "models": [SONNET, HAIKU],
        "unpriced": 0,
        "unreadable": 0,
        "clipped": False,
    }
    assert document["usage"]["input_tokens"] == K100 + M
    assert document["usage"]["output_tokens"] == M
    assert document["tokens"] == K100 + 2 * M
    assert document["model"] is None and document["servedModel"] is None  # two models
    assert document["unpriced"] is False and document["costIncomplete"] is False
    assert seen[0] is not None and seen[0].cost is not None
    assert seen[0].cost.usd == pytest.approx(8.15)


def test_a_single_model_batch_is_counted_under_its_model() -> None:
    thinking = {
        "input_tokens": 10,
        "output_tokens": 100,
        "output_tokens_details": {"thinking_tokens": 60},
    }
    document, _ = build(
        results_record(
            line("a", "succeeded", message(thinking, HAIKU)),
            line("b", "succeeded", message(thinking, HAIKU)),
        )
    )
    assert document["model"] == document["servedModel"] == HAIKU
    assert document["usage"]["output_tokens_details"] == {"thinking_tokens": 120}
    # (20 x $1 + 200 x $5) / 1M x 0.5 = 0.00051
    assert document["cost"]["usd"] == pytest.approx(0.00051)


def test_a_clipped_download_is_marked_and_incomplete() -> None:
    whole = line("a", "succeeded", message({"input_tokens": K100, "output_tokens": 0}))
    cut = line("b", "succeeded", message({"input_tokens": K100, "output_tokens": 0}))[:40]
    document, _ = build(results_record(whole, cut, clipped=True))
    assert document["batch"]["clipped"] is True and document["batch"]["unreadable"] == 1
    assert document["batch"]["results"] == 1
    # Only the whole line: 0.1M x $3 x 0.5 = 0.15, a lower bound.
    assert document["cost"]["usd"] == pytest.approx(0.15)
    assert document["costIncomplete"] is True
    assert any("clipped" in note for note in document["cost"]["notes"])


def test_unknown_models_in_a_batch() -> None:
    known = line("a", "succeeded", message({"input_tokens": K100}))
    unknown = line("b", "succeeded", message({"input_tokens": K100}, "mystery-9"))
    document, _ = build(results_record(known, unknown))
    # 0.1M x $3 x 0.5 = 0.15; the unknown model's result is left out.
    assert document["cost"]["usd"] == pytest.approx(0.15)
    assert document["costIncomplete"] is True and document["batch"]["unpriced"] == 1
    document, _ = build(results_record(unknown, unknown))
    assert document["cost"] is None and document["unpriced"] is True


def test_only_the_results_download_is_a_batch() -> None:
    usage = {"input_tokens": K100, "output_tokens": 0}
    # The same JSONL on another path is not parsed as results.
    document, _ = build(
        record_of(
            line("a", "succeeded", message(usage)), method="GET", path="/v1/messages/batches/x"
        )
    )
    assert "batch" not in document and document["usage"] is None
    # A plain message is billed in full: 0.1M x $3 = 0.30.
    document, _ = build(record_of(json.dumps(message(usage)).encode()))
    assert document["cost"]["usd"] == pytest.approx(0.3) and "batch" not in document


class _BrokenPrices(PriceTable):
    """The real table whose engine fails: the record must survive it."""

    def cost_of(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("pricing bug")


def test_a_pricing_failure_costs_neither_the_record_nor_the_metrics_call() -> None:
    broken = _BrokenPrices.load()
    seen: list[tuple[bool, Priced | None]] = []
    record = record_of(json.dumps(message({"input_tokens": 5})).encode())
    document = build_record_document(
        record, broken, lambda exchange, judged, priced: seen.append((judged, priced))
    )
    assert document["recordError"] == "RuntimeError: pricing bug"
    assert document["cost"] is None and seen == [(False, None)]
