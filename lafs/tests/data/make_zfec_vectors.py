"""Regenerates zfec-vectors.txt: known answers from Python zfec (the C code Tahoe-LAFS uses).

Run with the project's venv: .venv/bin/python lafs/tests/data/make_zfec_vectors.py

Each line: k n piece_size sha256(all n blocks concatenated, in block order).
Piece j of the input holds byte (i*131 + j*257 + k*17 + n*3 + (i*i % 251)) % 256 at index i;
lafs/tests/zfec_vectors.rs builds the same input.
"""
import hashlib
import os
import zfec

PAIRS = [
    (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 5), (3, 10), (4, 7), (5, 5), (7, 10),
    (10, 10), (13, 40), (16, 32), (25, 100), (64, 65), (71, 255), (100, 200), (101, 256),
    (128, 256), (1, 256), (200, 201), (255, 256), (256, 256), (17, 255), (3, 256),
]
SIZES = [1, 7, 33, 4096, 8193]
MAX_WORK = 40_000_000


def piece(k, n, j, size):
    return bytes((i * 131 + j * 257 + k * 17 + n * 3 + (i * i % 251)) % 256 for i in range(size))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zfec-vectors.txt")
    lines = []
    for k, n in PAIRS:
        for size in SIZES:
            if (n - k) * k * size > MAX_WORK:
                continue
            pieces = [piece(k, n, j, size) for j in range(k)]
            blocks = zfec.Encoder(k, n).encode(pieces, list(range(n)))
            digest = hashlib.sha256(b"".join(blocks)).hexdigest()
            lines.append("%d %d %d %s" % (k, n, size, digest))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d vectors to %s" % (len(lines), out))


if __name__ == "__main__":
    main()
