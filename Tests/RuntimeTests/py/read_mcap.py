#!/usr/bin/env python3
"""Reads an mgptd recording with the `mcap` package and prints a JSON summary:
message counts per topic, the schema names, and whether every /intent payload is JSON with the
required keys.

    read_mcap.py FILE.mcap [--allow-truncated]

--allow-truncated: the file may end mid-record or without its Footer (a daemon killed with
SIGKILL). The `mcap` package is then given the file up to the end of its last complete record,
found by walking the record framing (spec: opcode u8, length u64 little-endian, content), and reads
that prefix with its NonSeekingReader. Why not hand it the whole file (measured with mcap 1.6.0):
make_reader reads the Footer from the end of the file first, so on a file without one it fails
before the first message (RecordLengthLimitExceeded on whatever bytes sit there); NonSeekingReader
yields every complete message but then raises EndOfFile, or struct.error when the cut falls inside
a record's fixed-size fields. The summary then adds "truncated", "valid_bytes", "file_bytes" and
"last_intent_seq".
"""
import io
import json
import struct
import sys

try:
    from mcap.exceptions import EndOfFile
    from mcap.reader import NonSeekingReader, make_reader
except ImportError:
    sys.exit("read_mcap.py needs the mcap package: pip install mcap")

MAGIC = b"\x89MCAP0\r\n"
FOOTER = 0x02


def complete_prefix(data):
    """(bytes up to the end of the last complete record, True when Footer + closing magic follow)."""
    if not data.startswith(MAGIC):
        sys.exit("read_mcap.py: not an MCAP file (bad magic)")
    at = len(MAGIC)
    while len(data) - at >= 9:
        opcode, length = struct.unpack_from("<BQ", data, at)
        end = at + 9 + length
        if end > len(data):
            break
        at = end
        if opcode == FOOTER:
            return at, data[at:at + len(MAGIC)] == MAGIC
    return at, False


args = [a for a in sys.argv[1:] if not a.startswith("--")]
allow_truncated = "--allow-truncated" in sys.argv
counts, schemas, bad, last_intent_seq = {}, set(), 0, None
required = ["v", "seq", "intent", "confidence", "gated", "reason", "entropy", "head_disagreement"]
with open(args[0], "rb") as f:
    data = f.read()
valid, complete = complete_prefix(data)
if complete or not allow_truncated:
    messages = make_reader(io.BytesIO(data)).iter_messages()
else:
    messages = NonSeekingReader(io.BytesIO(data[:valid])).iter_messages(log_time_order=False)


def each(messages):
    """The messages; a prefix without a Footer ends with EndOfFile exactly at its end."""
    try:
        yield from messages
    except EndOfFile:
        if complete or not allow_truncated:
            raise


for schema, channel, message in each(messages):
    counts[channel.topic] = counts.get(channel.topic, 0) + 1
    if schema is not None:
        schemas.add(schema.name)
    if channel.topic == "/intent":
        try:
            payload = json.loads(message.data)
        except ValueError:
            bad += 1
            continue
        if any(k not in payload for k in required):
            bad += 1
        else:
            last_intent_seq = payload["seq"]
summary = {"counts": counts, "schemas": sorted(schemas), "bad_intents": bad}
if allow_truncated:
    summary.update({"truncated": not complete, "valid_bytes": valid, "file_bytes": len(data), "last_intent_seq": last_intent_seq})
print(json.dumps(summary))
