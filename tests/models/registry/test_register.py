"""The champion/challenger gate and registration against a real MLflow server started by this module.

One server of the local stack (with its S3 for artifacts) serves the whole module (``mlflow_server``,
from this folder's conftest). Three training sets
share one validation month, so every run scores the champion on the same rows: a weak model (few
training rows), a strong one (all rows) and a useless one (shuffled training labels). The scenario
registers them in that order and re-registers, then each test checks one rule.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.cli import main
from models.core.errors import UserError
from models.core.names import CHALLENGER, CHAMPION
from models.data.features import LABEL_COLUMN, TIME_COLUMN
from models.registry.register import register_model, reuse_problem
from models.registry.versions import wait_until_ready
from models.training.train import train_model
from stack.embedded import StackEnv
from tests.models.training.trips import build_trips, write_trips

NAME = "gate-test"
WRITES = (
    "create_registered_model",
    "create_model_version",
    "set_registered_model_alias",
    "set_model_version_tag",
)


def training_sets(workdir) -> dict[str, str]:
    """Weak, strong and useless training months, each followed by the same validation month."""
    trips = build_trips(rows=8000, seed=21)
    valid = trips[trips[TIME_COLUMN] >= pd.Timestamp("2025-08-01")]
    train = trips[trips[TIME_COLUMN] < pd.Timestamp("2025-08-01")]
    labels = np.random.default_rng(0).permutation(train[LABEL_COLUMN].to_numpy())
    frames = {
        "weak": train.sample(n=120, random_state=0),
        "strong": train,
        "useless": train.assign(**{LABEL_COLUMN: labels}),
    }
    paths = {key: workdir / f"{key}.parquet" for key in frames}
    return {key: write_trips(paths[key], pd.concat([rows, valid])) for key, rows in frames.items()}


@pytest.fixture(scope="module")
def scenario(mlflow_server: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """weak -> register -> strong -> register -> useless -> register -> register strong and weak again."""
    uri = mlflow_server["MLFLOW_TRACKING_URI"]
    workdir = tmp_path_factory.mktemp("gate")
    paths = training_sets(workdir)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        runs, registrations = {}, {}
        for key in ("weak", "strong", "useless"):
            runs[key] = train_model(
                paths[key], tracking_uri=uri, experiment="g", model_name=NAME, max_evals=1
            )
            registrations[key] = register_model(runs[key].run_id, name=NAME, tracking_uri=uri)
        again = {k: register_model(runs[k].run_id, name=NAME, tracking_uri=uri) for k in ("strong", "weak")}
    return SimpleNamespace(uri=uri, runs=runs, registrations=registrations, again=again, paths=paths)


def alias_version(uri: str, alias: str, name: str = NAME) -> str:
    return str(MlflowClient(uri).get_model_version_by_alias(name, alias).version)


def record_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every registry write MlflowClient makes from now on, as ``(method, *arguments after the name)``."""
    writes: list[tuple] = []
    for method in WRITES:
        real = getattr(MlflowClient, method)

        def recording(self, *args, _method=method, _real=real, **kwargs):
            writes.append((_method, *args[1:3]))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, method, recording)
    return writes


@pytest.mark.integration
def test_first_model_that_beats_the_baseline_becomes_champion(scenario):
    first = scenario.registrations["weak"]
    assert (first.version, first.promoted, first.champion_version) == ("1", True, "1")
    assert "no champion yet" in first.reason.lower()
    assert (first.decision, first.compared_on) == ("promoted", "2025-08")


@pytest.mark.integration
def test_training_scores_the_champion_on_the_same_validation_rows(scenario):
    weak, strong = scenario.runs["weak"], scenario.runs["strong"]
    assert strong.champion_version == "1"
    # The champion is the weak run's model: scored again on the same month it gives the same numbers.
    assert strong.champion_metrics == pytest.approx(weak.metrics)


@pytest.mark.integration
def test_a_better_challenger_moves_champion(scenario):
    strong_run, strong = scenario.runs["strong"], scenario.registrations["strong"]
    assert strong_run.metrics["roc_auc"] > strong_run.champion_metrics["roc_auc"] + 0.002
    assert (strong.version, strong.promoted, strong.champion_version) == ("2", True, "2")
    assert "beats champion version 1" in strong.reason and strong.compared_on == "2025-08"
    assert (strong.challenger_score, strong.champion_score) == pytest.approx(
        (strong_run.metrics["roc_auc"], strong_run.champion_metrics["roc_auc"])
    )
    view = "?workflowType=machine_learning"  # the UI's model-training view, not GenAI
    assert strong.version_url == f"{scenario.uri}/#/models/{NAME}/versions/2{view}"
    assert strong.run_url.startswith(f"{scenario.uri}/#/experiments/")
    assert strong.run_url.endswith(f"/runs/{strong_run.run_id}{view}")


@pytest.mark.integration
def test_a_worse_challenger_leaves_champion_alone_and_says_why(scenario):
    useless_run, useless = scenario.runs["useless"], scenario.registrations["useless"]
    assert useless_run.metrics["roc_auc"] < useless_run.champion_metrics["roc_auc"]
    assert (useless.version, useless.promoted, useless.champion_version) == ("3", False, "2")
    assert "does not beat" in useless.reason
    assert alias_version(scenario.uri, CHAMPION) == "2"
    assert MlflowClient(scenario.uri).get_model_version(NAME, "3").tags["gate.reason"] == useless.reason


@pytest.mark.integration
def test_registering_a_run_again_creates_no_version(scenario):
    strong_again, weak_again = scenario.again["strong"], scenario.again["weak"]
    assert (strong_again.version, strong_again.promoted, strong_again.champion_version) == ("2", False, "2")
    assert strong_again.decision == "already-champion" and "already champion" in strong_again.reason
    # The weak run was compared with no champion; champion is now version 2, so it may not return.
    assert (weak_again.version, weak_again.promoted, weak_again.champion_version) == ("1", False, "2")
    assert alias_version(scenario.uri, CHALLENGER) == "1"  # the latest registration, even a repeat
    versions = MlflowClient(scenario.uri).search_model_versions(f"name = '{NAME}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]


@pytest.mark.integration
def test_a_rerun_keeps_the_first_decision_and_records_its_own_outcome(scenario):
    client = MlflowClient(scenario.uri)
    strong, weak = (client.get_run(scenario.runs[key].run_id).data.tags for key in ("strong", "weak"))
    first = scenario.registrations["strong"]
    assert (strong["gate.decision"], strong["gate.reason"]) == ("promoted", first.reason)
    assert client.get_model_version(NAME, "2").tags["gate.reason"] == first.reason
    assert [strong[key] for key in strong if key.startswith("gate.rerun.")] == [
        f"already-champion: {scenario.again['strong'].reason} (flow run none)"
    ]
    assert scenario.again["strong"].rerun_record in strong
    # The weak run was promoted when registered first; its rerun, refused, is a record of its own.
    assert weak["gate.decision"] == "promoted" and "No champion yet" in weak["gate.reason"]
    reruns = [weak[key] for key in weak if key.startswith("gate.rerun.")]
    assert len(reruns) == 1 and reruns[0].startswith("kept-champion: Champion is version 2")
    assert scenario.registrations["weak"].rerun_record is None  # a first registration


@pytest.mark.integration
def test_registering_again_writes_only_what_moved(scenario, monkeypatch):
    weak = scenario.runs["weak"].run_id
    writes = record_writes(monkeypatch)
    register_model(weak, name=NAME, tracking_uri=scenario.uri)
    assert writes == []  # challenger, both gate tags and champion are already in place
    client = MlflowClient(scenario.uri)
    client.set_model_version_tag(NAME, "1", "gate.reason", "edited")
    writes.clear()
    register_model(weak, name=NAME, tracking_uri=scenario.uri)
    assert writes == []  # an earlier decision is never rewritten, even one edited by hand
    assert client.get_model_version(NAME, "1").tags["gate.reason"] == "edited"


@pytest.mark.integration
def test_versions_carry_lineage_and_the_gate_decision(scenario):
    version = MlflowClient(scenario.uri).get_model_version(NAME, "3")
    assert version.run_id == scenario.runs["useless"].run_id
    assert {"git.commit", "data.digest", "gate.decision", "gate.reason"} <= set(version.tags)
    assert version.tags["gate.decision"] == "kept-champion"
    assert (version.tags["data.train_months"], version.tags["data.valid_month"]) == (
        "2025-06..2025-07",
        "2025-08",
    )
    assert version.tags["gate.compared_on"] == "2025-08"
    run_tags = MlflowClient(scenario.uri).get_run(version.run_id).data.tags
    assert (
        run_tags["gate.decision"] == "kept-champion"
        and run_tags["gate.reason"] == version.tags["gate.reason"]
    )


@pytest.mark.integration
def test_a_cached_run_is_reusable_only_while_the_gate_can_still_judge_it(scenario):
    def problem(key: str) -> str | None:
        return reuse_problem(scenario.runs[key].run_id, name=NAME, tracking_uri=scenario.uri)

    assert problem("strong") is None  # it is the champion
    assert problem("useless") is None  # it scored the champion of today
    # Registered as version 1 when there was no champion: judged once, so reused as it is, never
    # trained again into a second version of the same training input.
    assert problem("weak") is None
    missing = reuse_problem("0" * 32, name=NAME, tracking_uri=scenario.uri)
    assert missing == f"run {'0' * 32} is no longer in the tracking store"
    client, useless = MlflowClient(scenario.uri), scenario.runs["useless"].run_id
    client.delete_run(useless)
    try:
        assert problem("useless") == f"run {useless} was deleted"
    finally:
        client.restore_run(useless)


@pytest.mark.integration
def test_an_unregistered_run_that_scored_a_replaced_champion_is_not_reusable(scenario, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    unregistered = train_model(  # another seed: another training than the registered weak run's
        scenario.paths["weak"],
        tracking_uri=scenario.uri,
        experiment="g",
        model_name=NAME,
        max_evals=1,
        seed=8,
    )
    assert unregistered.champion_version == "2"
    problem = lambda: reuse_problem(unregistered.run_id, name=NAME, tracking_uri=scenario.uri)  # noqa: E731
    assert problem() is None  # it scored the champion of today
    client = MlflowClient(scenario.uri)
    client.set_registered_model_alias(NAME, CHAMPION, "3")  # another run's promotion
    try:
        assert problem() == "the champion is now version 3, the run scored 2"
    finally:
        client.set_registered_model_alias(NAME, CHAMPION, "2")


@pytest.mark.integration
def test_another_run_of_the_same_training_is_registered_as_its_version(scenario, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, client = "same-training", MlflowClient(scenario.uri)

    def train(seed: int) -> str:
        path = scenario.paths["weak"]
        return train_model(
            path, tracking_uri=scenario.uri, experiment="g", model_name=name, max_evals=1, seed=seed
        ).run_id

    first, again, other = train(7), train(7), train(8)
    registered = [register_model(run, name=name, tracking_uri=scenario.uri) for run in (first, again, other)]
    assert [r.version for r in registered] == ["1", "1", "2"]  # two runs of one training: one version
    # The second run's scores judge the version, as a rerun: recorded on that run and on the version.
    key = registered[1].rerun_record
    assert key in client.get_run(again).data.tags and key not in client.get_run(first).data.tags
    assert client.get_model_version(name, "1").tags[key].endswith(f", run {again}")
    assert client.get_model_version(name, "1").tags["gate.decision"] == registered[0].decision
    assert client.get_model_version(name, "1").run_id == first
    assert client.get_run(again).data.tags["registry.same_training_as"] == f"version 1 (run {first})"
    assert "registry.same_training_as" not in client.get_run(other).data.tags
    assert reuse_problem(again, name=name, tracking_uri=scenario.uri) is None  # its training has a version


@pytest.mark.integration
def test_a_crash_between_version_and_champion_is_finished_by_a_rerun(mlflow_server, tmp_path, monkeypatch):
    uri, name = mlflow_server["MLFLOW_TRACKING_URI"], "crash-test"
    monkeypatch.chdir(tmp_path)
    features = write_trips(tmp_path / "trips.parquet", build_trips(rows=3000, seed=5))
    run = train_model(features, tracking_uri=uri, experiment="crash", model_name=name, max_evals=1)
    real_set_alias = MlflowClient.set_registered_model_alias

    def crash_on_champion(self, model, alias, version):
        if alias == CHAMPION:
            raise ConnectionError("tracking server went away")
        return real_set_alias(self, model, alias, version)

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_registered_model_alias", crash_on_champion)
        with pytest.raises(ConnectionError):
            register_model(run.run_id, name=name, tracking_uri=uri)
    client = MlflowClient(uri)
    assert set(client.get_registered_model(name).aliases) == {CHALLENGER}
    result = register_model(run.run_id, name=name, tracking_uri=uri)
    assert (result.version, result.promoted, result.champion_version) == ("1", True, "1")
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    again = register_model(run.run_id, name=name, tracking_uri=uri)  # the reason now says "already champion"
    assert "already champion" in again.reason
    writes = record_writes(monkeypatch)
    register_model(run.run_id, name=name, tracking_uri=uri)
    assert writes == []  # nothing moved since


@pytest.mark.integration
def test_unknown_run_is_one_sentence_naming_the_server(mlflow_server, capsys):
    uri = mlflow_server["MLFLOW_TRACKING_URI"]
    with pytest.raises(UserError, match=f"Run 'no-such-run' is not in the tracking store at {uri}"):
        register_model("no-such-run", name=NAME, tracking_uri=uri)
    assert main(["register", "--run-id", "no-such-run", "--tracking-uri", uri]) == 2
    assert "no-such-run" in capsys.readouterr().err


@pytest.mark.unit
def test_negative_margin_and_odd_names_are_refused():
    with pytest.raises(UserError, match="margin"):
        register_model("r", margin=-0.1, tracking_uri="sqlite:///unused.db")
    with pytest.raises(UserError, match="name"):
        register_model("r", name="x' or '1'='1", tracking_uri="sqlite:///unused.db")


class FakeRegistry:
    """A client whose version reports the given statuses in turn (then the last one forever)."""

    def __init__(self, statuses: list[str]):
        self.statuses = statuses
        self.calls = 0

    def get_model_version(self, name, version):
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        return SimpleNamespace(name=name, version=version, status=status)


@pytest.mark.unit
def test_aliases_wait_until_the_version_is_ready(monkeypatch):
    monkeypatch.setattr("models.registry.versions.POLL_S", 0.0)
    registry = FakeRegistry(["PENDING_REGISTRATION", "PENDING_REGISTRATION", "READY"])
    wait_until_ready(registry, NAME, "7")
    assert registry.calls == 3


@pytest.mark.unit
def test_a_failed_or_stuck_registration_is_a_user_error(monkeypatch):
    monkeypatch.setattr("models.registry.versions.POLL_S", 0.0)
    with pytest.raises(UserError, match="failed"):
        wait_until_ready(FakeRegistry(["PENDING_REGISTRATION", "FAILED_REGISTRATION"]), NAME, "7")
    with pytest.raises(UserError, match="still PENDING_REGISTRATION"):
        wait_until_ready(FakeRegistry(["PENDING_REGISTRATION"]), NAME, "7", timeout_s=0.0)
