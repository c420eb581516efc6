"""Regenerates share-hash-order.txt: the order in which Tahoe-LAFS 1.20 writes the share hash
chain into each share (`encode.py: send_all_share_hash_trees` iterates a Python set).

Run with the project's venv: .venv/bin/python lafs/tests/data/make_share_hash_order.py

Each line: N, then for shnum 0..N the node numbers in written order, shares separated by ';'.
"""
import os

from allmydata.hashtree import HashTree


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "share-hash-order.txt")
    lines = []
    for n in list(range(1, 33)) + [40, 64, 65, 100, 127, 128, 129, 200, 255, 256]:
        t = HashTree([b"\x00" * 32] * n)
        orders = [",".join(str(i) for i in t.needed_hashes(s, include_leaf=True)) for s in range(n)]
        lines.append("%d %s" % (n, ";".join(orders)))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d lines to %s" % (len(lines), out))


if __name__ == "__main__":
    main()
