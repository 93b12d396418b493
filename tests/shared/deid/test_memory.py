"""Memory: a 256 MiB instance streams through with the header and a chunk in memory, never the pixel data."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("chunk_kib", [4096, 64])
def test_a_256_mib_instance_grows_rss_by_at_most_64_mib(tmp_path, chunk_kib):
    probe = subprocess.run([sys.executable, "-m", "tests.shared.deid.memory_probe", str(tmp_path / "big.dcm"), "256",
                            str(chunk_kib)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["tail_sha256"] == result["expected_sha256"]          # the pixel element, byte for byte
    assert result["bytes_out"] == result["header"] + 12 + result["bytes_in_pixels"]
    assert result["rss_growth_mib"] <= 64, result
