#!/usr/bin/env python3
"""Writes the committed real-embedding sample from the full data set (numpy only).

    python make_sample.py FULL_DIR      # FULL_DIR holds base.npy and queries.npy (20,000 and
                                        # 1,000 rows of d=384; see README.md here)

The sample is the first 2,000 base rows and the first 200 query rows, unchanged (float32). Its
ground truth is not stored: the tests compute it exactly, in float64, from these rows.
"""
import sys
from pathlib import Path

import numpy as np

N_BASE, N_QUERIES = 2000, 200


def main() -> None:
    full = Path(sys.argv[1])
    here = Path(__file__).resolve().parent
    base = np.load(full / "base.npy")[:N_BASE]
    queries = np.load(full / "queries.npy")[:N_QUERIES]
    assert base.dtype == np.float32 and queries.dtype == np.float32
    np.save(here / "base.npy", np.ascontiguousarray(base))
    np.save(here / "queries.npy", np.ascontiguousarray(queries))
    print(f"wrote {base.shape} and {queries.shape} into {here}")


if __name__ == "__main__":
    main()
