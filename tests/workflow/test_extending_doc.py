"""docs/extending.md works as written: each of its bash blocks, run in order from the root
of a copy of the project, with every `snakemake` command as a dry run (which validates the
config, imports the user's modules and plans every job); and its walk-through, done for
real on a small study, puts an optimizer of one's own file into the report beside the
baselines, and editing that file reruns exactly its jobs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import copy_project, dry_run

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "extending.md"
TEXT = PAGE.read_text()
BLOCKS = re.findall(r"^```bash\n(.*?)^```", TEXT, re.M | re.S)
# The installation the page starts with: the tests run in an environment already set up.
SETUP = ("make setup", "source .venv/bin/activate")
COMMANDS = [b for b in BLOCKS if "snakemake" in b]
OWN_FILE = next(b for b in COMMANDS if "my_optim.py" in b)

# An optimizer the study does not have, in a file of the user's own (the page's protocol).
ADABELIEF = '''"""AdaBelief (Zhuang et al. 2020): Adam whose second moment tracks (g - m)^2."""

import torch

from optreg.training.optimizers import Optimizer


class AdaBelief(Optimizer):
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-16):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def update(self, params, grads, rates):
        m, s = self.buffer("exp_avg"), self.buffer("exp_avg_var")
        torch._foreach_lerp_(m, grads, 1 - self.beta1)
        diff = torch._foreach_sub(grads, m)
        torch._foreach_mul_(s, self.beta2)
        torch._foreach_addcmul_(s, diff, diff, value=1 - self.beta2)
        torch._foreach_add_(s, self.eps)
        denom = torch._foreach_sqrt(s)
        torch._foreach_div_(denom, (1 - self.beta2**self.steps) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        step = torch._foreach_mul(m, rates)
        torch._foreach_addcdiv_(params, step, denom, value=-1 / (1 - self.beta1**self.steps))
'''


def bash(work: Path, script: str) -> subprocess.CompletedProcess:
    """`script` run from `work` with `snakemake` as the reader's shell finds it: the one
    beside this Python."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )


def test_the_page_has_commands():
    assert len(COMMANDS) >= 3


def test_the_page_starts_with_the_makefiles_setup():
    """The installation the page gives is the Makefile's, into the folder it activates."""
    assert all(line in BLOCKS[0] for line in SETUP)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^setup:", makefile, re.M)
    assert re.search(r"^VENV \?= \.venv$", makefile, re.M)


@pytest.mark.parametrize("block", COMMANDS, ids=[b.splitlines()[-1][:60] for b in COMMANDS])
def test_block_runs_as_written(root, tmp_path, block):
    work = copy_project(root, tmp_path / "optreg")
    shutil.copytree(root / "docs", work / "docs")
    script = re.sub(r"^snakemake\b(?!.*\s-n\b)", "snakemake -n", block, flags=re.M)
    proc = bash(work, script)
    assert proc.returncode == 0, f"{script}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "train" in proc.stdout + proc.stderr  # it planned training jobs


def own_config_change() -> dict:
    """The YAML the page shows for a class of one's own."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", TEXT, re.M | re.S)
    return yaml.safe_load(next(b for b in blocks if '"my_optim:' in b))


def test_ones_own_file_reaches_the_report_and_its_edit_reruns_exactly_its_jobs(root, tmp_path):
    work = copy_project(root, tmp_path / "optreg")
    lines = OWN_FILE.strip().splitlines()
    (run,) = [line for line in lines if line.startswith("snakemake")]
    proc = bash(work, "\n".join(line for line in lines if line != run))
    assert proc.returncode == 0, proc.stderr
    # The reader's own class, and the config changed in the two places the page names.
    (work / "my_optim.py").write_text(ADABELIEF)
    path = work / re.search(r"--configfile (\S+)", run)[1]
    config = yaml.safe_load(path.read_text())
    change = own_config_change()
    config["optimizers"] = change["optimizers"]
    config["studies"]["optimization"]["factors"].update(
        change["studies"]["optimization"]["factors"]
    )
    # Small enough for a test: two epochs, one activation, one seed per phase.
    config["protocol"].update(lr_grid=[0.001, 0.01], tuning_seeds=[0], evaluation_seeds=[100])
    config["defaults"]["epochs"] = 2
    config["studies"]["optimization"]["factors"]["activation"] = ["relu"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    proc = bash(work, run)  # the one command, as written
    assert proc.returncode == 0, f"{run}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    study = work / "results" / "studies" / "optimization"
    summary = pd.read_csv(study / "summary.csv")
    assert set(summary["optimizer"]) == {"sgd", "momentum", "rmsprop", "adam", "adabelief"}
    mine = summary[summary["optimizer"] == "adabelief"]
    assert set(mine["protocol"]) == {"tuned", "oneshot"}
    assert mine.loc[mine["protocol"] == "oneshot", "lr"].tolist() == [0.001]  # its default_lr
    report = (work / "results" / "report.json").read_text()
    assert "optimizer adabelief: my_optim:AdaBelief(eps=1e-16)" in report
    assert (work / "results" / "report.pdf").stat().st_size > 0

    # Judged by content: touching the file reruns nothing; editing its update reruns
    # the train jobs of its cells and what follows, not the built-in cells.
    own = work / "my_optim.py"
    mine = sorted(str(d.relative_to(work)) for d in study.glob("*/optimizer-adabelief*/seeds-*"))
    assert len(mine) == 1
    os.utime(own)
    assert dry_run(work, "--configfile", str(path.relative_to(work))) == {}
    own.write_text(ADABELIEF.replace("value=1 - self.beta2)", "value=0.5 * (1 - self.beta2))"))
    proc = bash(work, f"{run} -n")
    assert proc.returncode == 0, proc.stderr
    assert sorted(re.findall(r"output: (results/studies/\S+/seeds-\S+)", proc.stdout)) == mine
    assert "prepare_data" not in proc.stdout
