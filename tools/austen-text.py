#!/usr/bin/env python3
"""Writes the six Jane Austen novels (public domain) as one UTF-8 text file, for the tokenizer
benchmark. The text comes from Debian's r-cran-janeaustenr package (fetched with apt-get download
unless a .deb is given): its data/Rdata.rdb holds R-serialized character vectors (one element per
line of a novel), each stored as [4-byte big-endian length][zlib stream]. Every string element
(CHARSXP: type 9 with R's UTF-8 / ASCII / Latin-1 / cached flags, int32 length, bytes) is written in
file order, one per line. No R needed.

    tools/austen-text.py <output.txt> [r-cran-janeaustenr.deb]
"""
import glob
import os
import struct
import subprocess
import sys
import tempfile
import zlib


CHARSXP_FLAGS = {0x00000009, 0x00040009, 0x00080009, 0x00020009, 0x00008009, 0x00048009}


def strings(blob):
    i = 0
    while i + 8 <= len(blob):
        flags, = struct.unpack_from('>I', blob, i)
        if flags in CHARSXP_FLAGS:
            n, = struct.unpack_from('>i', blob, i + 4)
            if 0 <= n <= len(blob) - i - 8:
                yield blob[i + 8:i + 8 + n].decode('utf-8')
                i += 8 + n
                continue
        i += 1


def main():
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        deb = sys.argv[2] if len(sys.argv) > 2 else None
        if deb is None:
            subprocess.run(['apt-get', 'download', 'r-cran-janeaustenr'], cwd=work, check=True)
            deb = glob.glob(os.path.join(work, '*.deb'))[0]
        subprocess.run(['dpkg-deb', '-x', deb, work], check=True)
        rdb = glob.glob(os.path.join(work, 'usr/lib/R/site-library/janeaustenr/data/Rdata.rdb'))[0]
        data = open(rdb, 'rb').read()
    lines = []
    pos = 0
    while pos < len(data):
        pos += 4  # uncompressed length
        d = zlib.decompressobj()
        blob = d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
        lines.extend(strings(blob))
    with open(out, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    print(f'wrote {out}: {len(lines)} lines, {sum(len(l) for l in lines)} characters')


if __name__ == '__main__':
    main()
