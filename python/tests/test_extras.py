"""The core works without the optional packages, and a missing one is named."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)


def test_core_without_numpy_torch_pyarrow(samples_archive):
    p = run(
        f"""
        import sys
        for m in ("numpy", "torch", "pyarrow", "polars"):
            sys.modules[m] = None  # any import of them fails
        import hexz
        r = hexz.open({samples_archive!r})
        assert len(r.namelist()) > 0 and r.read(5)
        ds = hexz.Dataset({samples_archive!r})
        assert ds[0].startswith(b"sample-00000")
        try:
            hexz.read_array(r, 0, (4,), "uint8")
        except ImportError as e:
            print("numpy:", e)
        try:
            import hexz.torch
        except ImportError as e:
            print("torch:", e)
        """
    )
    assert p.returncode == 0, p.stderr
    assert "pip install 'hexz[numpy]'" in p.stdout
    assert "pip install 'hexz[torch]'" in p.stdout
