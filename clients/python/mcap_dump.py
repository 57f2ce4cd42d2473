#!/usr/bin/env python3
"""Dump a MiniGPT MCAP recording with the reference Python reader (pip install mcap).

    python3 clients/python/mcap_dump.py run.mcap            # one line per message
    python3 clients/python/mcap_dump.py run.mcap --json     # one JSON document (used by MCAPTests)

Every CRC the file carries is checked: the data-section CRC (DataEnd) by the `mcap` stream reader,
the summary CRC (Footer) here with zlib. Exit status: 0 ok, 1 unreadable or corrupt, 3 `mcap` missing.
"""
import json
import struct
import sys
import zlib

try:
    from mcap.reader import make_reader
    from mcap.stream_reader import StreamReader
    from mcap.records import Footer, Message
except ImportError:
    print("mcap_dump.py: the Python package 'mcap' is not importable: pip install mcap", file=sys.stderr)
    sys.exit(3)

FOOTER_CRC_PREFIX = 1 + 8 + 8 + 8  # opcode, record length, summary_start, summary_offset_start


def check_summary_crc(path, footer):
    """Recompute the Footer's summary CRC (spec: summary section + footer through summary_offset_start)."""
    if footer.summary_crc == 0:
        return "absent"
    with open(path, "rb") as f:
        data = f.read()
    footer_start = len(data) - 8 - (1 + 8 + 20)  # magic, footer record
    start = footer.summary_start or footer_start
    crc = zlib.crc32(data[start:footer_start + FOOTER_CRC_PREFIX])
    if crc != footer.summary_crc:
        raise ValueError(f"summary CRC mismatch: footer says {footer.summary_crc:#010x}, computed {crc:#010x}")
    return "ok"


def payload(data):
    try:
        return json.loads(data)
    except ValueError:
        return {"_raw": data.decode("utf-8", "replace")}


def dump(path, as_json):
    # Pass 1: every record in order, CRCs validated (DataEnd's data-section CRC).
    footer, messages = None, []
    with open(path, "rb") as f:
        for record in StreamReader(f, validate_crcs=True).records:
            if isinstance(record, Message):
                messages.append(record)
            elif isinstance(record, Footer):
                footer = record
    summary_crc = check_summary_crc(path, footer)
    # Pass 2: the indexed reader, as Foxglove-style tools read it (summary section).
    with open(path, "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
        decoded = [(ch.topic, m) for _, ch, m in reader.iter_messages()]
        metadata = [{"name": m.name, "metadata": dict(m.metadata)} for m in reader.iter_metadata()]
    channels = summary.channels
    if as_json:
        stats = summary.statistics
        print(json.dumps({
            "profile": header.profile, "library": header.library, "summary_crc": summary_crc,
            "schemas": [{"id": s.id, "name": s.name, "encoding": s.encoding, "data": s.data.decode()}
                        for s in summary.schemas.values()],
            "channels": [{"id": c.id, "schema_id": c.schema_id, "topic": c.topic,
                          "message_encoding": c.message_encoding, "metadata": c.metadata}
                         for c in channels.values()],
            "statistics": {"message_count": stats.message_count, "schema_count": stats.schema_count,
                           "channel_count": stats.channel_count, "metadata_count": stats.metadata_count,
                           "message_start_time": stats.message_start_time,
                           "message_end_time": stats.message_end_time,
                           "channel_message_counts": {str(k): v for k, v in stats.channel_message_counts.items()}},
            "metadata": metadata,
            "stream_message_count": len(messages),
            "messages": [{"topic": t, "channel_id": m.channel_id, "sequence": m.sequence, "log_time": m.log_time,
                          "publish_time": m.publish_time, "payload": payload(m.data)} for t, m in decoded],
        }, sort_keys=True))
    else:
        print(f"# {path}: library={header.library!r} profile={header.profile!r} "
              f"messages={len(decoded)} channels={[c.topic for c in channels.values()]} summary_crc={summary_crc}")
        for topic, m in decoded:
            print(f"{m.log_time} {topic} #{m.sequence} {m.data.decode('utf-8', 'replace')}")


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        dump(args[0], "--json" in argv)
    except Exception as e:  # report any reader failure as a one-line diagnosis
        print(f"mcap_dump.py: {args[0]}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
