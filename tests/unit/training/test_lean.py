"""A train job imports only what training needs: no analysis, plotting or vision libraries.

Each of them costs a train job time before it trains anything (pandas and scipy about half
a second each on a small machine; `torch._dynamo`, which any `torch.optim` optimizer
imports, about a second), and a study runs hundreds of train jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import settings

HEAVY = (
    "torchvision",
    "pandas",
    "matplotlib",
    "seaborn",
    "scipy",
    "sklearn",
    "torch._dynamo",
    "sympy",
)

# What scripts/train.py does, without Snakemake: import, train one tuning job, write it.
JOB = """
import json, sys
from optreg.logs import log_to
from optreg.training.job import run_job
log_to(sys.argv[3])
run_job(data_path=sys.argv[1], out_dir=sys.argv[2], study="s", combination="c",
        factors={}, settings=json.loads(sys.argv[4]), phase="tune", seeds=[0, 1],
        lr_grid=[0.01, 0.1], default_lr=0.01)
print(json.dumps(sorted(sys.modules)))
"""


def test_a_train_job_loads_no_heavy_module(digits_file, tmp_path):
    out = tmp_path / "runs"
    cfg = json.dumps(settings(epochs=1))
    cmd = [sys.executable, "-c", JOB, str(digits_file), str(out), str(tmp_path / "log"), cfg]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    assert len(list(out.glob("lr-*_seed-*.json"))) == 4  # the job really trained
    # Its own CPU time and memory (getrusage), beside the records: the whole process's,
    # from its start (importing torch alone takes a good part of a CPU second).
    header, row = (out / "usage.tsv").read_text().splitlines()
    usage = dict(zip(header.split("\t"), map(float, row.split("\t")), strict=True))
    assert usage["cpu_s"] >= usage["user_s"] > 0.2 and usage["max_rss_mib"] > 50
    assert {"torch", "optreg.training.loop", "optreg.data.prepared"} <= loaded
    heavy = [name for name in HEAVY if name in loaded]
    assert heavy == [], f"a train job imported {heavy}"
