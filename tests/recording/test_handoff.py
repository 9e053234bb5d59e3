"""The hand-off of a finished exchange: credentials never reach the journal, and
the recorder rebuilds the exchange the document builder expects."""

from __future__ import annotations

import json
import marshal

from recording.document import build_document
from recording.documents import build_record_document
from recording.handoff import decode_exchange, encode_exchange, redact_query
from recording.journal import Position, Record
from storage.pricing import PriceTable
from streaming.credentials import fingerprint
from streaming.exchange import Exchange, Outcome
from tests.fixtures import message_bytes, stream_bytes

KEY = "sk-ant-api03-secret-key-value"


def _exchange(*, sse: bool) -> Exchange:
    body = json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "stream": sse,
            "messages": [{"role": "user", "content": "hi"}],
        }
    ).encode()
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query=f"beta=true&key={KEY}",
        request_headers=[
            ("x-api-key", KEY),
            ("authorization", f"Bearer {KEY}"),
            ("content-type", "application/json"),
            ("anthropic-beta", "a,b"),
        ],
        request_body=body,
        request_json=json.loads(body),
    )
    exchange.model = "claude-sonnet-4-5"
    exchange.stream_requested = sse
    exchange.status = 200
    exchange.is_sse = sse
    exchange.response_headers = [
        ("content-type", "text/event-stream" if sse else "application/json"),
        ("request-id", "req_1"),
        ("set-cookie", f"session={KEY}"),
    ]
    payload = stream_bytes("tool_use") if sse else message_bytes("tool_use")
    # Awkward chunk boundaries: the recorder sees the bytes, not the chunks.
    exchange.response_chunks = [payload[i : i + 7] for i in range(0, len(payload), 7)]
    exchange.response_bytes = len(payload)
    exchange.mark_first_byte()
    exchange.finish(Outcome.COMPLETED)
    return exchange


def _record(exchange: Exchange) -> Record:
    meta = encode_exchange(exchange)
    # What the journal does to it: marshal round trip.
    meta = marshal.loads(marshal.dumps(meta))
    return Record(
        owner="w1",
        start=Position(1, 0),
        end=Position(1, 10),
        meta=meta,
        request_body=exchange.request_body,
        response_body=b"".join(exchange.response_chunks),
    )


def test_no_credential_reaches_the_journal_metadata() -> None:
    meta = encode_exchange(_exchange(sse=True))
    text = marshal.dumps(meta)
    assert KEY.encode() not in text
    assert ["x-api-key", fingerprint(KEY)] in meta["request_headers"]
    assert meta["client_key"] == fingerprint(KEY)
    assert meta["query"] == f"beta=true&key={fingerprint(KEY)}"


def test_redact_query_keeps_other_parameters() -> None:
    assert redact_query("beta=true") == "beta=true"
    assert redact_query("") == ""
    redacted = redact_query(f"a=1&api_key={KEY}&access_token={KEY}")
    assert KEY not in redacted and redacted.startswith("a=1&")


def test_credentials_by_rule_never_reach_the_journal() -> None:
    """Headers and query parameters no fixed list names (`x-goog-api-key`,
    `api-key`, `x-auth-token`, `?key=`...) are fingerprinted before the journal,
    also in the upstream URL; rate-limit token counts and the session id stay."""
    exchange = _exchange(sse=False)
    secrets = {
        "x-goog-api-key": "goog-SECRET-1",
        "Api-Key": "azure-SECRET-2",
        "X-AUTH-TOKEN": "auth-SECRET-3",
        "x-amz-security-token": "amz-SECRET-4",
    }
    exchange.request_headers = [
        *secrets.items(),
        ("api-key", "azure-SECRET-5"),  # repeated under another case
        ("x-claude-code-session-id", "7b0e8a8c-0000-4000-8000-000000000001"),
    ]
    exchange.response_headers = [
        ("anthropic-ratelimit-input-tokens-remaining", "1595000"),
        ("x-upstream-session-token", "resp-SECRET-6"),
    ]
    exchange.query = "beta=true&key=query-SECRET-7&%61ccess_token=query-SECRET-8"
    exchange.upstream_url = "https://upstream.example/v1/messages?" + exchange.query
    meta = encode_exchange(exchange)
    raw = marshal.dumps(meta)
    for n in range(1, 9):
        assert b"SECRET-%d" % n not in raw
    headers = dict(meta["request_headers"])
    assert headers["x-goog-api-key"] == fingerprint("goog-SECRET-1")
    assert ["api-key", fingerprint("azure-SECRET-5")] in meta["request_headers"]
    assert headers["x-claude-code-session-id"] == "7b0e8a8c-0000-4000-8000-000000000001"
    assert ["anthropic-ratelimit-input-tokens-remaining", "1595000"] in meta["response_headers"]
    assert meta["query"].startswith("beta=true&key=sha256:")
    assert meta["upstream_url"] == "https://upstream.example/v1/messages?" + meta["query"]


def test_rebuilt_document_equals_the_in_process_one() -> None:
    """The recorder's document of a journaled exchange is the document the
    worker used to build in process, field for field (ids and times aside)."""
    prices = PriceTable.load()
    for sse in (True, False):
        original = _exchange(sse=sse)
        record = _record(original)
        rebuilt = build_record_document(record, prices)
        # The in-process reference: fold the original the old way.
        reference_exchange = decode_exchange(record.meta, record.request_body, record.response_body)
        reference_exchange.credentials_redacted = False
        reference_exchange.request_headers = original.request_headers
        reference_exchange.response_headers = original.response_headers
        from recording.documents import fold

        fold(reference_exchange)
        reference = build_document(reference_exchange, prices)
        for name in ("model", "usage", "tokens", "cost", "stopReason", "outcome", "statusCode"):
            assert rebuilt[name] == reference[name], name
        assert rebuilt["usage"]["output_tokens"] > 0
        assert rebuilt["request"]["headers"] == reference["request"]["headers"]
        assert rebuilt["response"]["headers"] == reference["response"]["headers"]
        assert rebuilt["clientKeyFingerprint"] == fingerprint(KEY)
        assert rebuilt["response"]["body"] == reference["response"]["body"]
        assert rebuilt["_id"] == original.request_id
        assert KEY not in json.dumps(rebuilt, default=str)


def test_stream_verdict_is_judged_by_the_recorder() -> None:
    prices = PriceTable.load()
    exchange = _exchange(sse=True)
    payload = b"".join(exchange.response_chunks)
    cut = payload[: payload.index(b"event: message_stop")]
    exchange.response_chunks = [cut]
    document = build_record_document(_record(exchange), prices)
    assert document["outcome"] == "upstream_error"
    assert document["errorReason"] == "stream ended before message_stop"

    errored = _exchange(sse=True)
    errored.response_chunks = [
        cut + b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'
    ]
    document = build_record_document(_record(errored), prices)
    assert document["errorReason"] == "stream error: overloaded_error"


def test_clipped_stream_is_not_called_incomplete() -> None:
    exchange = _exchange(sse=True)
    payload = b"".join(exchange.response_chunks)
    exchange.response_chunks = [payload[:200]]
    exchange.response_clipped = True
    document = build_record_document(_record(exchange), PriceTable.load())
    assert document["outcome"] == "completed"
    assert document["response"]["bodyClipped"] is True
    assert document["response"]["bodyBytes"] == len(payload)


def test_record_without_request_id_gets_its_journal_position() -> None:
    record = Record("w1", Position(3, 128), Position(3, 256), {"encodeError": "boom"}, b"", b"")
    document = build_record_document(record, PriceTable.load())
    assert document["_id"] == "w1-3-128"
    assert document["encodeError"] == "boom"


def test_metadata_is_plain_even_when_the_server_hands_out_str_subclasses() -> None:
    class Sub(str):
        pass

    exchange = _exchange(sse=False)
    exchange.method, exchange.path = Sub("POST"), Sub("/v1/messages")
    exchange.request_headers = [(Sub("x-app"), Sub("cli"))]
    meta = marshal.loads(marshal.dumps(encode_exchange(exchange)))
    assert meta["method"] == "POST" and meta["request_headers"] == [["x-app", "cli"]]
