"""Regenerates chk-vectors.yaml: the CHK cases of Tahoe-LAFS 1.20's published capability vectors
(integration/vectors/test_vectors.yaml in tahoe-lafs, format 2023-01-16.2), without the SSK cases
and their RSA keys.

Usage: .venv/bin/python lafs/tests/data/extract_chk_vectors.py PATH/TO/tahoe-lafs-1.20-capabilities.yaml
"""
import os
import sys

import yaml


def main():
    with open(sys.argv[1]) as f:
        vectors = yaml.safe_load(f)
    chk = [case for case in vectors["vector"] if case["format"]["kind"] == "chk"]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chk-vectors.yaml")
    with open(out, "w") as f:
        f.write("# The CHK cases of Tahoe-LAFS 1.20.0's capability vectors; see extract_chk_vectors.py.\n")
        yaml.safe_dump({"vector": chk}, f, sort_keys=True)
    print("wrote %d CHK cases to %s" % (len(chk), out))


if __name__ == "__main__":
    main()
