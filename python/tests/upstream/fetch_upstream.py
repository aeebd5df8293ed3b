"""Downloads torch-rechub's sdist from PyPI (hash-checked) and extracts tests/test_serving.py
beside this file. Usage: python fetch_upstream.py [VERSION] (default 0.9.0). The sdist is cached
under $VECINDEX_CACHE (default ~/.cache/vecindex)."""

import hashlib
import os
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
INDEX = "https://pypi.org/simple/torch-rechub/"


def sdist_url(version: str) -> tuple:
    page = urllib.request.urlopen(INDEX, timeout=60).read().decode()
    name = f"torch_rechub-{version}.tar.gz"
    m = re.search(r'href="([^"#]*' + re.escape(name) + r')#sha256=([0-9a-f]{64})"', page)
    if not m:
        raise SystemExit(f"{name} not found on {INDEX}")
    return m.group(1), m.group(2), name


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else "0.9.0"
    url, sha, name = sdist_url(version)
    cache = Path(os.environ.get("VECINDEX_CACHE", Path.home() / ".cache" / "vecindex"))
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / name
    if not tarball.exists() or hashlib.sha256(tarball.read_bytes()).hexdigest() != sha:
        tmp = tarball.with_suffix(".part")
        urllib.request.urlretrieve(url, tmp)
        got = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if got != sha:
            raise SystemExit(f"{name}: sha256 {got} does not match PyPI's {sha}")
        tmp.replace(tarball)
    member = f"torch_rechub-{version}/tests/test_serving.py"
    with tarfile.open(tarball) as tar:
        data = tar.extractfile(member).read()
    (HERE / "test_serving.py").write_bytes(data)
    print(HERE / "test_serving.py")


if __name__ == "__main__":
    main()
