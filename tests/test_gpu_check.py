"""scripts/gpu_check.sh in its CPU fallback (the GPU part runs on a GPU machine, by hand)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_gpu_check_cpu_fallback_says_what_it_skips_and_runs_the_rest(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_STEPS": "2", "GPU_CHECK_RESUME_STEPS": "2",
           "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--quick", "--out", str(tmp_path / "gpu")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "CPU fallback. SKIPPED: the tests marked cuda" in out
    assert "0 stage(s) failed" in out
    gpu = tmp_path / "gpu"
    assert (gpu / "env.txt").read_text().startswith("python ")
    assert "| 32 | fp32 | 8 |" in (gpu / "throughput.md").read_text()
    rec = json.loads((gpu / "resume.json").read_text())
    assert rec["bit_exact"] and rec["device"] == "cpu"
    assert (gpu / "samples_cpu.npz").is_file() and (gpu / "emoji-dcgan" / "stats.jsonl").is_file()
    assert not (gpu / "emoji-dcgan" / "checkpoints").exists()  # weights are not kept under results/
    assert "gpu_check" in (gpu / "gpu_check.log").read_text()
    if torch.cuda.is_available():  # --quick forces the fallback even on a GPU machine
        assert "no CUDA GPU here" in out
