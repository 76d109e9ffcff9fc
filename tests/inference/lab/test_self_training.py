import shutil
from dataclasses import replace

import numpy as np
import pytest

from inference.lab.__main__ import main
from inference.lab.evaluate import loso, markdown
from inference.lab.self_training import SelfTraining, members_of, self_train
from inference.lab.train import Hyperparameters, build_spec, fit, learn_counting_params
from inference.model import PhaseModel
from tests.inference.lab.test_train import synthetic_prepared

HP = replace(Hyperparameters(), window=64, epochs=2, augment_copies=0, ensemble=2)


def weak_copy(p, factor=0.4):
    """The same squats performed with a smaller movement: an athlete the network never saw."""
    x = p.x.copy()
    x[:, 3] *= factor
    return replace(p, x=x, subject="9")


@pytest.fixture(scope="module")
def fold():
    train = [synthetic_prepared(), synthetic_prepared(subject="2")]
    network, scaler, _ = fit(train, HP)
    params = learn_counting_params([p.labels for p in train], [p.set_break for p in train], HP.sample_rate_hz)
    spec = build_spec(HP, scaler=scaler, params=params, version="test")
    return PhaseModel(network=network, spec=spec, checksum=""), scaler, params, train


def test_settings_are_checked():
    with pytest.raises(ValueError, match="rounds must be >= 0"):
        SelfTraining(rounds=-1)
    with pytest.raises(ValueError, match="scope must be one of athlete, session"):
        SelfTraining(scope="user")
    with pytest.raises(ValueError, match="epochs and learning rate"):
        SelfTraining(epochs=0)


def test_members_of_an_ensemble_share_its_weights(fold):
    model = fold[0]
    members = members_of(model.network)
    assert len(members) == 2
    assert members_of(members[0]) == [members[0]]


def test_self_training_adapts_to_the_new_athlete_and_restores_the_trained_weights(fold):
    model, scaler, params, train = fold
    test = [weak_copy(synthetic_prepared(subject="3"))]
    trained = [w.copy() for w in model.network.get_weights()]
    before = self_train(model, scaler, params, test=test, train=train, hp=HP, config=SelfTraining(rounds=0))
    after = self_train(model, scaler, params, test=test, train=train, hp=HP, config=SelfTraining(rounds=2))
    assert after[0].shape == before[0].shape == (600, 7)
    # fitted to its own decoded phases, the networks grow surer on the athlete they adapted to
    assert after[0].max(axis=1).mean() > before[0].max(axis=1).mean()
    for w, t in zip(model.network.get_weights(), trained, strict=True):
        np.testing.assert_array_equal(w, t)


def test_each_session_starts_again_from_the_trained_networks(fold):
    model, scaler, params, train = fold
    p = weak_copy(synthetic_prepared(subject="3"))
    config = SelfTraining(rounds=1, scope="session", anchored=False)
    twice = self_train(model, scaler, params, test=[p, p], train=train, hp=HP, config=config)
    once = self_train(model, scaler, params, test=[p], train=train, hp=HP, config=replace(config, scope="athlete"))
    np.testing.assert_allclose(twice[0], twice[1], atol=1e-6)  # the second did not start from the first
    np.testing.assert_allclose(twice[0], once[0], atol=1e-6)


def test_the_windowed_model_is_refused(fold):
    model, scaler, params, train = fold
    with pytest.raises(ValueError, match="sequence model only"):
        self_train(
            model, scaler, params, test=train, train=train, hp=replace(HP, architecture="window"), config=SelfTraining()
        )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--self-train", "-1"], "rounds must be >= 0"),
        (["--self-train", "1", "--architecture", "window"], "needs the sequence architecture"),
    ],
)
def test_evaluate_refuses_bad_self_training_options_before_training(argv, message, tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_loso_reports_the_figures_before_and_after_self_training(exermote_files, tmp_path):
    data = tmp_path / "exermote"
    data.mkdir()
    for name in ("2017-04-22_15-51-42_individual-2.csv", "2017-04-23_12-08-23_individual-1.csv"):
        shutil.copy(exermote_files[0].parent / name, data / name)
    hp = replace(Hyperparameters(), epochs=1, augment_copies=0, ensemble=1, break_weights=(1.0,))
    report = loso(data, hp, self_training=SelfTraining(rounds=1, epochs=1))
    adapted = report["self_training"]
    assert adapted["rounds"] == 1
    assert adapted["anchored"] is True
    assert set(report["folds"]) == {"1", "2"}
    assert adapted["before"]["sets"] == report["overall"]["sets"] > 5
    assert adapted["before"]["frame_accuracy_4"] != report["overall"]["frame_accuracy_4"]
    assert "Self-trained on each held-out athlete (1 round, scope athlete, with the training athletes)" in markdown(
        report
    )
