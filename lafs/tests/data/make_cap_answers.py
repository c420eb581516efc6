"""Known answers for lafs/src/cap.rs, made with Tahoe-LAFS 1.20.0's own code.

Run from the repository root:
    .venv/bin/python lafs/tests/data/make_cap_answers.py \
        ../shared/vectors/tahoe-lafs-1.20-capabilities.yaml > lafs/tests/data/cap-answers.txt

Every capability of the published 1.20 vectors, its read-only and verify caps, and the DIR2
variants built on them, each with the kind, the storage index Tahoe derives (`-` for literal caps)
and, for CHK kinds, k/N/size, one per line: `CAP SI K N SIZE`. These are test vectors, not
anybody's secrets.
"""
import sys

import yaml
from allmydata import uri
from allmydata.util import base32

with open(sys.argv[1]) as f:
    vectors = yaml.safe_load(f)

caps = []
for case in vectors["vector"]:
    cap = uri.from_string(case["expected"])
    caps.append(cap)
    if isinstance(cap, uri.CHKFileURI):
        caps.append(uri.ImmutableDirectoryURI(cap))
    elif isinstance(cap, uri.WriteableSSKFileURI):
        caps.append(uri.DirectoryURI(cap))
    elif isinstance(cap, uri.WriteableMDMFFileURI):
        caps.append(uri.MDMFDirectoryURI(cap))

# Literal files and directories (no storage index).
lit = uri.LiteralFileURI(b"hello, world")
caps += [lit, uri.LiteralDirectoryURI(lit), uri.LiteralFileURI(b"")]

seen = set()
for cap in caps:
    for c in (cap, cap.get_readonly(), cap.get_verify_cap()):
        if c is None:
            continue
        s = c.to_string().decode()
        if s in seen:
            continue
        seen.add(s)
        si = c.get_storage_index()
        si = base32.b2a(si).decode() if si else "-"
        inner = getattr(c, "_filenode_uri", c)
        if hasattr(inner, "needed_shares"):
            extra = "%d %d %d" % (inner.needed_shares, inner.total_shares, inner.size)
        else:
            extra = "- - -"
        print(s, si, extra)
