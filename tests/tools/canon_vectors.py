#!/usr/bin/env python3
"""canon_vectors.py - random test vectors for the canonical JSON writer
(lib/stream/canon.c, doc/wire.md#canonical-json), used by tests/unit/test_canon.c.

Each line is "<wire hex> <canonical hex>": a random JSON text as it could
arrive on the wire (any key order, spaces, raw UTF-8 or escapes in either
case, floats in several spellings, repeated member names, integers of any
size, NaN/Infinity) and the reference bytes

    json.dumps(json.loads(wire), sort_keys=True, separators=(",", ":"))

encoded as UTF-8 (ensure_ascii and allow_nan left at their defaults).
Lone surrogate escapes and NUL in member names are left out: json-c cannot
represent them (canon.h lists the difference).  A document that has both a
repeated member name and an integer outside int64/uint64 is one m8_canon_parse
refuses: its line ends with " refuse".

With --floats N it prints N lines "<IEEE bits, 16 hex digits> <repr>" of
random doubles instead (every finite bit pattern is equally likely, plus
the special values and powers of two), for m8_canon_double.

    canon_vectors.py [--seed N] [--count N] [--floats N]
"""
import argparse
import json
import math
import random
import struct

SPECIAL_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 2.5, 100.0, 1e16, 1e15, 9999999999999998.0,
    1e-4, 1e-5, 0.0001, 0.00001, 1e-7, 123456789012345678.0, 5e-324, -5e-324,
    2.2250738585072014e-308, 1.7976931348623157e308, 2.0 ** 53, 2.0 ** 60,
    2.0 ** -1022, 2.0 ** -1074, 1.5e21, 9007199254740993.0, 0.3, 1 / 3,
    float("nan"), float("inf"), float("-inf"),
]
SPECIAL_INTS = [
    0, 1, -1, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, -(2 ** 63), -(2 ** 63) - 1,
    2 ** 64 - 1, 2 ** 64, 10 ** 20, -(10 ** 20), 10 ** 40, 123456789012345678901234567890,
]
ALPHABET = (
    "abcXYZ_09 /\\\"'\n\t\r\b\f\x01\x1f\x7f\x80\xa0é☃€\u2028\ufeff\uffff"
    "\U0001f600\U00010000\U0010ffff"
)


def rand_double(r):
    pick = r.random()
    if pick < 0.3:
        return r.choice(SPECIAL_FLOATS)
    if pick < 0.6:
        while True:
            (d,) = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))
            if math.isfinite(d):
                return d
    if pick < 0.8:
        return r.uniform(-1e6, 1e6)
    mant = r.randint(1, 10 ** r.randint(1, 17))
    return float(f"{mant}e{r.randint(-330, 310)}") * r.choice((1, -1))


def rand_int(r):
    pick = r.random()
    if pick < 0.3:
        return r.choice(SPECIAL_INTS) * r.choice((1, -1))
    if pick < 0.6:
        return r.randint(-1000, 1000)
    return r.randint(-(10 ** r.randint(1, 30)), 10 ** r.randint(1, 30))


def rand_str(r, key=False):
    n = r.choice((0, 1, 2, 5, 12))
    chars = [r.choice(ALPHABET) if r.random() < 0.6 else chr(r.randint(0x20, 0x7E))
             for _ in range(n)]
    if r.random() < 0.1:
        cp = r.randint(0, 0x10FFFF)
        if not 0xD800 <= cp <= 0xDFFF:
            chars.append(chr(cp))
    s = "".join(chars)
    if key:
        s = s.replace("\x00", "")
    return s


class Obj(list):
    """An object as a list of (name, value): names may repeat on the wire."""

    def __init__(self, members):
        seen = set()
        super().__init__(m for m in members if not (m[0] in seen or seen.add(m[0])))


def rand_value(r, depth):
    kinds = ["str", "int", "float", "bool", "null"]
    if depth < 5:
        kinds += ["obj", "arr", "obj"]
    k = r.choice(kinds)
    if k == "str":
        return rand_str(r)
    if k == "int":
        return rand_int(r)
    if k == "float":
        return rand_double(r)
    if k == "bool":
        return r.random() < 0.5
    if k == "null":
        return None
    if k == "arr":
        return [rand_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    return Obj((rand_str(r, key=True), rand_value(r, depth + 1)) for _ in range(r.randint(0, 5)))


def emit_str(r, s):
    if r.random() < 0.5:
        return json.dumps(s, ensure_ascii=r.random() < 0.5)
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in '"\\' or cp < 0x20 or (cp > 0x7E and r.random() < 0.5):
            if cp > 0xFFFF:
                v = cp - 0x10000
                pair = (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                out.append("".join(r.choice(("\\u%04x", "\\u%04X")) % u for u in pair))
            else:
                out.append(r.choice(("\\u%04x", "\\u%04X")) % cp)
        elif r.random() < 0.1 and 0x20 <= cp <= 0x7E:
            out.append("\\u%04X" % cp)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def emit_float(r, f):
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        if r.random() < 0.3:
            return "1e400" if f > 0 else "-1e999"
        return "Infinity" if f > 0 else "-Infinity"
    forms = [repr(f), "%.17e" % f, "%.20E" % f, "%.3e" % f, repr(f).replace("e", "E")]
    if f == int(f) and abs(f) < 1e20:
        forms.append("%de0" % int(f))
        forms.append("%d.000" % int(f))
    return r.choice(forms)


def sp(r):
    return r.choice(("", "", " ", "\n  ", "\t"))


class Wire:
    def __init__(self):
        self.repeated = False
        self.big = False


def emit(r, v, w):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        if not -(2 ** 63) <= v < 2 ** 64:
            w.big = True
        return "-0" if v == 0 and r.random() < 0.1 else str(v)
    if isinstance(v, float):
        return emit_float(r, v)
    if isinstance(v, str):
        return emit_str(r, v)
    if not isinstance(v, Obj):
        return "[" + sp(r) + ("," + sp(r)).join(emit(r, x, w) for x in v) + sp(r) + "]"
    members = list(v)
    if members and r.random() < 0.05:  # a repeated member name: the last one wins
        members.append((r.choice(members)[0], rand_value(r, 5)))
    r.shuffle(members)
    if len({k for k, _ in members}) < len(members):
        w.repeated = True
    return "{" + sp(r) + ("," + sp(r)).join(
        emit_str(r, k) + sp(r) + ":" + sp(r) + emit(r, x, w) for k, x in members) + sp(r) + "}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--floats", type=int, default=0)
    a = ap.parse_args()
    r = random.Random(a.seed)
    if a.floats:
        for i in range(a.floats):
            if i < len(SPECIAL_FLOATS):
                d = SPECIAL_FLOATS[i]
            elif i % 4 == 0:
                d = math.ldexp(1.0, r.randint(-1074, 1023)) * r.choice((1, -1))
            else:
                d = rand_double(r)
            print(struct.pack(">d", d).hex(), json.dumps(d))
        return
    for _ in range(a.count):
        v = rand_value(r, 0) if r.random() < 0.2 else Obj(
            (rand_str(r, key=True), rand_value(r, 1)) for _ in range(r.randint(0, 6)))
        w = Wire()
        wire = emit(r, v, w)
        canon = json.dumps(json.loads(wire), sort_keys=True, separators=(",", ":"))
        print(wire.encode("utf-8").hex(), canon.encode("utf-8").hex(),
              *(["refuse"] if w.repeated and w.big else []))


if __name__ == "__main__":
    main()
