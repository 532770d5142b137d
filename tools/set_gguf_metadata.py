#!/usr/bin/env python3
"""Sets or removes string metadata keys of a GGUF file, leaving every other byte of metadata and every
tensor byte as it was (tensor offsets are relative to the data section, which is copied verbatim).

    python3 tools/set_gguf_metadata.py MODEL.gguf OUT.gguf key=value ... -key ...

Used to change a trained model's recommendations (selma.recommended.*) after evaluating it further,
without retraining it.
"""
import struct
import sys

import gguf_writer as gw


def kv_spans(g):
    """(key, start, end) of each metadata entry, in file order."""
    g.p = 24  # magic, version, tensor count, key count
    spans = []
    for _ in range(len(g.meta)):
        start = g.p
        key = g._str()
        g._read_value(g._u32())
        spans.append((key, start, g.p))
    return spans


def main(argv):
    src, dst, edits = argv[1], argv[2], argv[3:]
    g = gw.GGUFFile(src)
    spans = kv_spans(g)
    infos_end = g.p
    for _ in g.order:  # walk the tensor infos to find where they end
        g._str()
        nd = g._u32()
        g.p += 8 * nd + 4 + 8
    infos = g.data[infos_end:g.p]
    sets, removes = {}, set()
    for e in edits:
        if e.startswith("-"):
            removes.add(e[1:])
        else:
            k, v = e.split("=", 1)
            sets[k] = v
    entries = []
    for key, start, end in spans:
        if key in removes:
            continue
        if key in sets:
            entries.append(gw._gguf_str(key) + struct.pack("<I", gw.T_STRING) + gw._gguf_str(sets.pop(key)))
        else:
            entries.append(g.data[start:end])
    for key, value in sets.items():
        entries.append(gw._gguf_str(key) + struct.pack("<I", gw.T_STRING) + gw._gguf_str(value))
    head = gw.GGUF_MAGIC + struct.pack("<IQQ", g.version, len(g.order), len(entries)) + b"".join(entries) + infos
    align = int(g.meta.get("general.alignment", gw.ALIGNMENT))
    with open(dst, "wb") as f:
        f.write(head)
        f.write(b"\0" * ((-len(head)) % align))
        f.write(g.data[g.data_start:])
    print(f"{dst}: {len(entries)} metadata keys ({len(spans)} before), {len(g.order)} tensors copied")


if __name__ == "__main__":
    main(sys.argv)
