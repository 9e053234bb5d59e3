"""Byte-level edits of one top-level member of a JSON object (on the layout that
`control.jsonbytes` scans): the value's bytes replaced or a member appended,
every other byte of the body copied unchanged."""

from __future__ import annotations

import json

from control.jsonbytes import Member, ObjectLayout, scan_object


def get_member(body: bytes, key: str, layout: ObjectLayout | None = None) -> bytes | None:
    """Raw bytes of the top-level `key`'s value (the last one when the key repeats,
    as json.loads decides), or None when absent. `layout`: the body's scan, when
    already made (a body of tens of MB is not scanned twice)."""
    found = (layout or scan_object(body)).find(key)
    if not found:
        return None
    last = found[-1]
    return bytes(body[last.value_start : last.value_end])


def set_member(body: bytes, key: str, raw_value: bytes) -> bytes:
    """`body` with every top-level `key` set to `raw_value` (already JSON-encoded),
    all other bytes unchanged (see `splice_member`)."""
    return splice_member(body, key, raw_value)[0]


def splice_member(
    body: bytes, key: str, raw_value: bytes, layout: ObjectLayout | None = None
) -> tuple[bytes, ObjectLayout]:
    """`body` with every top-level `key` set to `raw_value` (already JSON-encoded),
    all other bytes unchanged, and the layout of the result (so that a second edit
    need not scan again).

    A repeated key has every occurrence replaced: parsers disagree on which duplicate
    wins (first or last), and the edit must hold for all of them. An absent key is
    appended as the last member, spelled with the separators the body already uses
    between its last two members so pretty-printed bodies stay pretty.
    """
    buf = bytes(body)
    layout = layout or scan_object(buf)
    members = layout.members
    if any(member.key == key for member in members):
        parts: list[bytes] = []
        moved: list[Member] = []
        pos = shift = 0
        for member in members:
            value_start = member.value_start + shift
            value_end = member.value_end + shift
            if member.key == key:
                parts += (buf[pos : member.value_start], raw_value)
                pos = member.value_end
                value_end = value_start + len(raw_value)
                shift += len(raw_value) - (member.value_end - member.value_start)
            moved.append(
                Member(
                    member.key,
                    member.key_start + value_start - member.value_start,
                    member.key_end + value_start - member.value_start,
                    value_start,
                    value_end,
                )
            )
        parts.append(buf[pos:])
        new_layout = ObjectLayout(layout.open_brace, layout.close_brace + shift, tuple(moved))
        return b"".join(parts), new_layout
    name = json.dumps(key).encode()
    if not members:
        at = layout.open_brace + 1
        head = name + b":"
        insert = head + raw_value
        key_start = at
    else:
        last = members[-1]
        colon = buf[last.key_end : last.value_start]
        comma = buf[members[-2].value_end : last.key_start] if len(members) > 1 else b","
        at = last.value_end
        head = comma + name + colon
        insert = head + raw_value
        key_start = at + len(comma)
    added = Member(key, key_start, key_start + len(name), at + len(head), at + len(insert))
    new_layout = ObjectLayout(
        layout.open_brace, layout.close_brace + len(insert), (*members, added)
    )
    return buf[:at] + insert + buf[at:], new_layout
