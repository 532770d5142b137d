"""Minimal reader for R lazy-load databases (`Rdata.rdx` + `Rdata.rdb`), enough for character vectors.

`.rdx` is a gzip-compressed R serialization of a list(variables=, references=, compressed=) where
each variable maps to c(offset, length) in the `.rdb`.  Each `.rdb` entry is a 4-byte big-endian
uncompressed length followed by a zlib stream holding one R-serialized (XDR, format 2 or 3) object.
"""
import gzip
import struct
import zlib

NILVALUE, REFSXP, GLOBALENV, UNBOUND, MISSINGARG, BASENAMESPACE = 254, 255, 253, 252, 251, 250
NAMESPACESXP, PACKAGESXP, PERSISTSXP, EMPTYENV, BASEENV = 249, 248, 247, 242, 241
SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 1, 2, 9, 10, 13, 14, 16, 19


class RReader:
    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def i32(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def header(self):
        fmt = self.d[self.p:self.p + 2]
        if fmt != b"X\n":
            raise ValueError(f"not XDR serialization: {fmt!r}")
        self.p += 2
        version = self.i32()
        self.i32()  # writer version
        self.i32()  # min reader version
        if version == 3:
            n = self.i32()
            self.p += n  # native encoding
        return self.item()

    def item(self):
        flags = self.i32()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t == NILVALUE or t in (GLOBALENV, UNBOUND, MISSINGARG, BASENAMESPACE, EMPTYENV, BASEENV):
            return None
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.i32()
            return self.refs[idx - 1]
        if t == PERSISTSXP or t == NAMESPACESXP or t == PACKAGESXP:
            self.i32()  # always 0
            n = self.i32()
            names = [self.item() for _ in range(n)]
            obj = ("persist", names)
            self.refs.append(obj)
            return obj
        if t == SYMSXP:
            name = self.item()
            self.refs.append(("sym", name))
            return ("sym", name)
        if t == LISTSXP:
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            out = [(tag[1] if tag else None, car)]
            if isinstance(cdr, list):
                out += cdr
            return out
        if t == CHARSXP:
            n = self.i32()
            if n == -1:
                return None
            s = self.d[self.p:self.p + n]
            self.p += n
            return s.decode("utf-8", errors="replace") if flags & (1 << 15 | 1 << 14 | 1 << 3) else s.decode("latin-1")
        if t in (LGLSXP, INTSXP):
            n = self.i32()
            v = list(struct.unpack_from(f">{n}i", self.d, self.p))
            self.p += 4 * n
        elif t == REALSXP:
            n = self.i32()
            v = list(struct.unpack_from(f">{n}d", self.d, self.p))
            self.p += 8 * n
        elif t in (STRSXP, VECSXP):
            n = self.i32()
            v = [self.item() for _ in range(n)]
        else:
            raise ValueError(f"unsupported R type {t} at {self.p}")
        if has_attr:
            attrs = self.item()
            v = RVector(v)
            v.attrs = {k: a for k, a in attrs} if isinstance(attrs, list) else {}
        return v


class RVector(list):
    """An R vector with attributes (e.g. `names`)."""
    attrs = {}

    def named(self):
        return dict(zip(self.attrs.get("names", []), self))


def read_lazyload(rdx_path, rdb_path):
    """Returns {name: object} for every variable in the database."""
    idx = RReader(gzip.decompress(open(rdx_path, "rb").read())
                  if open(rdx_path, "rb").read(2) == b"\x1f\x8b"
                  else zlib.decompress(open(rdx_path, "rb").read()[4:])).header()
    variables = idx.named()["variables"].named()
    rdb = open(rdb_path, "rb").read()
    out = {}
    for name, (off, length) in variables.items():
        off, length = int(off), int(length)
        blob = rdb[off:off + length]
        raw = zlib.decompress(blob[4:])
        out[name] = RReader(raw).header()
    return out
