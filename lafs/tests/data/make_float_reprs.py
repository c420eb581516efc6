"""Regenerates float-reprs.txt: Python's repr (what json.dumps writes) of assorted doubles.

Run: .venv/bin/python lafs/tests/data/make_float_reprs.py

Each line: the double's 64 bits in hex, then repr(value).
"""
import math
import os
import random
import struct


def main():
    rng = random.Random(20261206)
    values = []
    for _ in range(1500):  # any bit pattern
        values.append(struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0])
    for _ in range(1500):  # magnitudes where the positional/scientific switch happens
        values.append(rng.uniform(-1, 1) * 10 ** rng.randint(-8, 20))
    for _ in range(500):  # timestamps, as metadata holds them
        values.append(rng.randint(0, 2**31) + rng.randint(0, 999999) / 1e6)
    values += [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0]
    lines = []
    for v in values:
        if math.isnan(v) or math.isinf(v):
            continue
        lines.append("%s %r" % (struct.pack(">d", v).hex(), v))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "float-reprs.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d floats to %s" % (len(lines), out))


if __name__ == "__main__":
    main()
