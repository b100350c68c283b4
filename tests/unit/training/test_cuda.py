"""The CUDA path: training, streaming and checkpoint/resume on a GPU (skipped without one).

bench/gpu_check.sh runs these on a GPU machine, with its timings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import settings
from test_checkpoint import Killed, fused_job, records

from optreg.data.prepared import load_prepared
from optreg.records import read_run
from optreg.training.checkpoint import Checkpoints
from optreg.training.job import run_job
from optreg.training.loop import train_runs

pytestmark = pytest.mark.cuda
GPU = torch.device("cuda", 0)


def test_a_gpu_job_records_its_gpu_and_matches_the_cpu_closely(digits_file, tmp_path):
    job = fused_job(digits_file, tmp_path, checkpoint=None)
    gpu = run_job(out_dir=tmp_path / "gpu", device="cuda", **job)
    cpu = run_job(out_dir=tmp_path / "cpu", device="cpu", **job)
    for a, b in zip(gpu, cpu, strict=True):
        ra, rb = read_run(a), read_run(b)
        assert ra["provenance"]["torch_device"].startswith("cuda:")
        assert ra["provenance"]["device"] == torch.cuda.get_device_name(0)
        # Different kernels, so not bit-identical; a few epochs keep them close.
        assert ra["final"]["val_accuracy"] == pytest.approx(rb["final"]["val_accuracy"], abs=0.02)


def test_streamed_batches_on_a_gpu_train_like_resident_data(digits_file):
    streamed = load_prepared(digits_file, device=GPU, free_bytes=0)
    resident = load_prepared(digits_file, device=GPU)
    assert streamed.streamed and resident.x["train"].is_cuda
    a = train_runs(streamed, settings(), [0.01, 0.1], [0, 1], GPU)
    b = train_runs(resident, settings(), [0.01, 0.1], [0, 1], GPU)
    for ra, rb in zip(a, b, strict=True):
        assert ra["final"]["val_loss"] == pytest.approx(rb["final"]["val_loss"], rel=1e-5)


def test_a_gpu_job_killed_after_a_checkpoint_resumes_to_identical_records(
    digits_file, tmp_path, monkeypatch
):
    job = fused_job(digits_file, tmp_path, device="cuda")
    reference = records(Path(run_job(out_dir=tmp_path / "reference", **job)[0]).parent)
    again = records(Path(run_job(out_dir=tmp_path / "again", **job)[0]).parent)
    assert again == reference, "the GPU path is not deterministic: resuming cannot be exact"
    real_save = Checkpoints.save

    def save_then_die(self, state):
        real_save(self, state)
        if self.saves == 45:  # in the evaluation phase
            raise Killed

    monkeypatch.setattr(Checkpoints, "save", save_then_die)
    with pytest.raises(Killed):
        run_job(out_dir=tmp_path / "resumed", checkpoint_minutes=1e-9, **job)
    monkeypatch.setattr(Checkpoints, "save", real_save)
    run_job(out_dir=tmp_path / "resumed", **job)
    assert records(tmp_path / "resumed") == reference
