"""``python -m convlab`` (the README's first command) runs and every check it prints passes."""

import subprocess
import sys


def test_demo_runs_and_its_checks_agree(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "convlab"], cwd=tmp_path, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    for section in ("Correlation vs convolution", "The three modes", "strided result",
                    "finite differences", "Unshared layers", "Speed against scipy.signal"):
        assert section in out, out
    # Each comparison column prints yes/NO; not one may disagree.
    assert " NO" not in out, out
    assert out.count("yes") >= 2 + 3 + 2 + 2 + 3, out
    assert "True" in out  # the strided result equals the stride-1 result sliced
