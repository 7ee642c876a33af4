"""Lineage tags: where the commit comes from, the Prefect ids, and that nothing secret leaks."""

from __future__ import annotations

import subprocess

import pytest

from models.core.secrets import mask_secrets
from models.training.lineage import UNKNOWN, collect_lineage, describe_command, read_git_state

TAGS = {"git.commit", "git.dirty", "data.digest", "command", "prefect.flow_run_id", "prefect.deployment"}


def init_repo(path) -> str:
    """A git repository with one commit; returns the commit id."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(path), *args], check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    (path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    return git("rev-parse", "HEAD").strip()


@pytest.mark.unit
def test_deployment_commit_wins_over_the_checkout():
    env = {"TO_BIKES_GIT_COMMIT": "feedbeef", "TO_BIKES_GIT_DIRTY": "false"}
    assert read_git_state(env) == ("feedbeef", "false")
    assert read_git_state({"TO_BIKES_GIT_COMMIT": "feedbeef"}) == ("feedbeef", UNKNOWN)


@pytest.mark.unit
def test_checkout_commit_and_dirty_flag_come_from_git(tmp_path):
    commit = init_repo(tmp_path)
    assert read_git_state({}, cwd=tmp_path) == (commit, "false")
    (tmp_path / "a.txt").write_text("two\n")
    assert read_git_state({}, cwd=tmp_path) == (commit, "true")


@pytest.mark.unit
def test_no_git_repository_means_unknown(tmp_path):
    assert read_git_state({}, cwd=tmp_path) == (UNKNOWN, UNKNOWN)


@pytest.mark.unit
def test_prefect_ids_come_from_the_environment():
    under_prefect = collect_lineage(
        "sha256:ab",
        env={"PREFECT__FLOW_RUN_ID": "f-1", "TO_BIKES_FLOW_RUN_ID": "f-2", "TO_BIKES_DEPLOYMENT": "d"},
    )
    assert set(under_prefect) == TAGS
    assert (under_prefect["prefect.flow_run_id"], under_prefect["prefect.deployment"]) == ("f-1", "d")
    assert collect_lineage("x", env={"TO_BIKES_FLOW_RUN_ID": "f-2"})["prefect.flow_run_id"] == "f-2"
    by_hand = collect_lineage("x", env={})
    assert (by_hand["prefect.flow_run_id"], by_hand["prefect.deployment"]) == ("none", "none")


@pytest.mark.unit
def test_secrets_never_reach_the_tags():
    secret = "s3cr3t-value-xyz"
    env = {"AWS_SECRET_ACCESS_KEY": secret, "PREFECT_API_KEY": secret, "TO_BIKES_GIT_COMMIT": "c"}
    argv = ["train", f"--tracking-uri=https://bob:{secret}@mlflow.example.invalid", f"--api-token={secret}"]
    tags = collect_lineage("sha256:ab", env=env, argv=argv)
    assert secret not in repr(tags)
    assert "https://bob:***@mlflow.example.invalid" in tags["command"]


@pytest.mark.unit
def test_mask_secrets_keeps_ordinary_arguments():
    assert mask_secrets("--input=s3://to-bikes/processed/2025/trips.parquet") == (
        "--input=s3://to-bikes/processed/2025/trips.parquet"
    )
    assert mask_secrets("http://127.0.0.1:5050") == "http://127.0.0.1:5050"
    assert describe_command(["models/training/train.py", "--seed", "7"]).endswith(
        "models/training/train.py --seed 7"
    )


@pytest.mark.unit
def test_a_secret_given_as_a_separate_argument_is_masked():
    command = describe_command(["-m", "models.data.fetch", "--api-token", "tok-123", "--years", "2025"])
    assert "tok-123" not in command
    assert command.endswith("-m models.data.fetch --api-token *** --years 2025")
