"""``make worker-stacks``: the processes under the background worker that handle SIGUSR1 (to-bikes-engine,
preloaded Dask workers) write their threads' stacks; the others, whose default for SIGUSR1 is to end, are
never sent it. Without a worker: one sentence, exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from models.core.settings import PROJECT_ROOT
from stack.embedded import make_stack_env
from stack.worker import STACKS_SIGNAL, catches_signal, signal_stack_writers

pytestmark = pytest.mark.unit

# A stand-in for the worker: two children, one writing its stacks on SIGUSR1 (as to-bikes-engine does),
# one with the signal's default action (as the multiprocessing resource tracker has).
TREE = """
import subprocess, sys, time
handler = "import faulthandler, signal; faulthandler.register(signal.SIGUSR1, all_threads=True); "
writer = subprocess.Popen([sys.executable, "-c", handler + "import time; time.sleep(600)"],
    stderr=open(sys.argv[1], "wb"))
plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(writer.pid, plain.pid, flush=True)
time.sleep(600)
"""


Tree = tuple[psutil.Popen, int, int, Path]  # the stand-in worker, its writer's and plain child's pids, stderr


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    stderr = tmp_path / "writer.stderr"
    root = psutil.Popen([sys.executable, "-c", TREE, str(stderr)], stdout=subprocess.PIPE, text=True)
    writer, plain = map(int, root.stdout.readline().split())
    try:
        yield root, writer, plain, stderr
    finally:
        for process in [*root.children(recursive=True), root]:
            process.kill()
        root.wait(timeout=60)


def test_only_the_processes_that_handle_the_signal_are_sent_it(tree: Tree) -> None:
    root, writer, plain, stderr = tree
    for _ in range(600):  # the writer's interpreter starts, then registers its handler
        if catches_signal(writer, STACKS_SIGNAL):
            break
        time.sleep(0.1)
    assert not catches_signal(plain, STACKS_SIGNAL)
    assert signal_stack_writers(root.pid) == [writer]
    for _ in range(100):
        if "most recent call first" in stderr.read_text():
            break
        time.sleep(0.1)
    assert "most recent call first" in stderr.read_text()
    assert psutil.pid_exists(writer) and psutil.pid_exists(plain)
    assert psutil.Process(writer).status() != psutil.STATUS_ZOMBIE
    assert psutil.Process(plain).status() != psutil.STATUS_ZOMBIE


def test_worker_stacks_without_a_worker_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TO_BIKES_", "PREFECT_", "AWS_"))}
    env.update(make_stack_env(tmp_path / "stack"))
    done = subprocess.run(
        [sys.executable, "-m", "orchestration", "worker", "stacks"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: no background worker is running (pid file "), lines
