"""Regenerates layout-vectors.txt: share headers and allocated sizes from Tahoe-LAFS 1.20's own
WriteBucketProxy (v1, or v2 when v1 cannot hold the sizes) and WriteBucketProxy_v2 (forced, as
Tahoe's FORCE_V2 does), for sizes up to 100 GiB. No data is encoded: the header depends only on
sizes.

Run with the project's venv: .venv/bin/python lafs/tests/data/make_layout_vectors.py

Each line: k n max_segment_size file_size, then the chosen version, its header (hex) and allocated
size, then the forced-v2 header (hex) and allocated size.
"""
import os

from allmydata import hashtree, uri
from allmydata.immutable import layout
from allmydata.util import mathutil

CASES = [
    (1, 1, 1 << 20, 56),
    (1, 1, 1 << 20, (1 << 20) + 1),
    (3, 10, 1 << 20, 56),
    (3, 10, 1 << 20, 1000),
    (3, 10, 1 << 20, 5 << 20),
    (3, 10, 131072, 8388609),
    (2, 3, 1 << 20, 3 << 30),
    (3, 10, 1 << 20, (12 << 30) + 7),
    (3, 10, 1 << 20, 13 << 30),
    (1, 1, 1 << 20, 5 << 30),
    (71, 255, 131072, 100 << 30),
    (101, 256, 1 << 20, 4194304),
]


def ueb_size(k, n, segsize, size, num_segments, tail_size):
    # As Encoder.get_uri_extension_size: the real block with zero hashes.
    padded_tail = mathutil.next_multiple(tail_size, k)
    params = {
        "codec_name": b"crs",
        "codec_params": b"%d-%d-%d" % (segsize, k, n),
        "size": size,
        "segment_size": segsize,
        "num_segments": num_segments,
        "needed_shares": k,
        "total_shares": n,
        "tail_codec_params": b"%d-%d-%d" % (padded_tail, k, n),
        "crypttext_hash": b"\x00" * 32,
        "crypttext_root_hash": b"\x00" * 32,
        "share_root_hash": b"\x00" * 32,
    }
    return len(uri.pack_extension(params))


def main():
    lines = []
    for k, n, maxseg, size in CASES:
        segsize = mathutil.next_multiple(min(maxseg, size), k)
        num_segments = mathutil.div_ceil(size, segsize)
        tail_size = size % segsize or segsize
        share_size = mathutil.div_ceil(size, k)
        block_size = segsize // k
        num_share_hashes = len(hashtree.IncompleteHashTree(n).needed_hashes(0, include_leaf=True))
        ueb = ueb_size(k, n, segsize, size, num_segments, tail_size)
        args = (None, None, share_size, block_size, num_segments, num_share_hashes, ueb)
        auto = layout.make_write_bucket_proxy(*args)
        v2 = layout.WriteBucketProxy_v2(*args)
        version = 2 if isinstance(auto, layout.WriteBucketProxy_v2) else 1
        lines.append("%d %d %d %d %d %s %d %s %d" % (
            k, n, maxseg, size, version, auto._offset_data.hex(), auto.get_allocated_size(),
            v2._offset_data.hex(), v2.get_allocated_size()))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layout-vectors.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d cases to %s" % (len(lines), out))


if __name__ == "__main__":
    main()
