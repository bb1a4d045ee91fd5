"""Logistic s-learner (treatment × feature interactions): conventions, extrapolation, spec."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from cx_pipelines.ml.errors import ModelSpecError, TrainingDataError
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.ml.supervised.uplift import UpliftModel, fit_uplift_model

OFFER_EFFECT = {"card": 0.2, "loan": 1.0}
CHANNEL_EFFECT = {"email": 0.0, "web": 0.8}


def campaigns(size: int, seed: int, *, without: tuple[str, str] | None = None) -> pd.DataFrame:
    """Randomised contacts whose true uplift is additive in offer and channel on log-odds,
    plus a larger effect for affluent customers; ``without`` drops one offer × channel."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "offer_type": rng.choice(list(OFFER_EFFECT), size),
            "channel": rng.choice(list(CHANNEL_EFFECT), size),
            "customer_type": rng.choice(["student", "affluent"], size),
            "age": rng.uniform(18, 80, size),
        }
    )
    if without is not None:
        pair = (frame["offer_type"] == without[0]) & (frame["channel"] == without[1])
        frame = frame[~pair].reset_index(drop=True)
    frame["customer_id"] = np.arange(len(frame))
    frame["treated"] = rng.random(len(frame)) < 0.8
    base = -2.5 - ((frame["age"] - 40) / 20) ** 2
    frame["true_effect"] = (
        frame["offer_type"].map(OFFER_EFFECT)
        + frame["channel"].map(CHANNEL_EFFECT)
        + 0.6 * (frame["customer_type"] == "affluent")
    )
    logit = base + frame["treated"] * frame["true_effect"]
    frame["true_uplift"] = 1 / (1 + np.exp(-(base + frame["true_effect"]))) - 1 / (
        1 + np.exp(-base)
    )
    frame["responded"] = rng.random(len(frame)) < 1 / (1 + np.exp(-logit))
    return frame


@pytest.fixture(scope="module")
def spec():
    base = load_spec("uplift")
    return dataclasses.replace(
        base,
        include=("offer_type", "channel", "customer_type", "age"),
        categorical=("offer_type", "channel", "customer_type"),
        meta_learner="logistic_s_learner",
        estimator_class="LogisticRegression",
        estimator_params={"C": 1.0},
    )


def test_logistic_learner_follows_the_estimator_conventions():
    frame = campaigns(3_000, seed=1)
    inputs = frame[["offer_type", "channel", "customer_type", "age"]]
    model = UpliftModel(
        learner="logistic_s_learner",
        categorical_features=("offer_type", "channel", "customer_type"),
        booster_params={"C": 1.0},
        random_state=0,
    )
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(inputs)
    assert model.fit(inputs, frame["responded"], treatment=frame["treated"]) is model
    treated, control = model.predict_arms(inputs)
    np.testing.assert_allclose(model.predict(inputs), treated - control)
    assert ((control > 0) & (control < 1)).all()
    again = clone(model).fit(inputs, frame["responded"], treatment=frame["treated"])
    np.testing.assert_allclose(again.predict(inputs), model.predict(inputs))


def test_an_offer_channel_pair_without_history_is_predicted_from_its_offer_and_channel(spec):
    train = campaigns(60_000, seed=2, without=("loan", "web"))
    model = fit_uplift_model(train, spec, random_state=0)
    unseen = campaigns(20_000, seed=3)
    unseen = unseen[(unseen["offer_type"] == "loan") & (unseen["channel"] == "web")]
    predicted = model.predict(unseen)
    truth = unseen["true_uplift"].to_numpy()
    # The pair never seen carries the largest effect (offer and channel both strong): the
    # model names it from the other pairs, within a quarter of the true mean uplift …
    assert abs(predicted.mean() - truth.mean()) < 0.25 * truth.mean()
    # … and ranks its customers like the truth (age peak, affluent customers).
    assert np.corrcoef(predicted, truth)[0, 1] > 0.8


def test_unknown_parameters_are_a_clear_error(spec):
    wrong = dataclasses.replace(spec, estimator_params={"max_iter": 50, "learning_rate": 0.1})
    with pytest.raises(TrainingDataError, match=r"\['learning_rate'\] do not apply"):
        fit_uplift_model(campaigns(2_000, seed=4), wrong)


def test_the_spec_names_the_estimator_the_logistic_learner_needs(tmp_path):
    document = yaml.safe_load(load_spec("uplift").source.read_text())
    document["estimator"] = {
        "class": "HistGradientBoostingClassifier",
        "meta_learner": "logistic_s_learner",
    }
    path = tmp_path / "uplift.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ModelSpecError, match="needs estimator.class 'LogisticRegression'"):
        load_spec(path)
    document["estimator"]["class"] = "LogisticRegression"
    path.write_text(yaml.safe_dump(document))
    assert load_spec(path).meta_learner == "logistic_s_learner"


def treatment_log_odds(model, frame: pd.DataFrame) -> np.ndarray:
    treated, control = model.predict_arms(frame)
    return np.log(treated / (1 - treated)) - np.log(control / (1 - control))


@pytest.mark.slow
def test_a_lighter_level_penalty_keeps_the_level_of_the_treatment_effect(spec):
    train, customers = campaigns(20_000, seed=5), campaigns(5_000, seed=6)
    truth = customers["true_effect"].to_numpy()

    def fitted(**params):
        return fit_uplift_model(
            train, dataclasses.replace(spec, estimator_params={"C": 0.01, **params}), random_state=0
        )

    common, light = fitted(), fitted(level_penalty=0.01)
    common_effect = treatment_log_odds(common, customers)
    light_effect = treatment_log_odds(light, customers)
    # A heavy common penalty pulls the whole effect towards zero; its intercept and offer and
    # channel levels under a penalty 100 times lighter keep most of the level …
    assert common_effect.mean() < truth.mean() - 0.2
    assert abs(light_effect.mean() - truth.mean()) < 0.6 * abs(common_effect.mean() - truth.mean())
    # … and the offers' difference (planted 0.8 on the log-odds) is wider, nearer the truth.
    by_offer = {
        name: [effect[customers["offer_type"] == offer].mean() for offer in OFFER_EFFECT]
        for name, effect in (("common", common_effect), ("light", light_effect))
    }
    assert np.diff(by_offer["common"])[0] < np.diff(by_offer["light"])[0] <= 0.8 + 0.1


def rare_offer_campaigns(size: int, seed: int) -> pd.DataFrame:
    """Randomised contacts (90 % treated) of a common card and a rare mortgage whose take-up
    without a contact is a tenth of the card's; the same treatment effect for both."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "offer_type": rng.choice(["card", "mortgage"], size, p=[0.7, 0.3]),
            "channel": rng.choice(["email", "web"], size),
            "customer_type": rng.choice(["student", "affluent"], size),
            "age": rng.uniform(18, 80, size),
        }
    )
    frame["customer_id"] = np.arange(size)
    frame["treated"] = rng.random(size) < 0.9
    base = np.where(frame["offer_type"] == "mortgage", -4.5, -2.0) - ((frame["age"] - 40) / 25) ** 2
    effect = 0.8 + 0.3 * (frame["channel"] == "web")
    frame["true_uplift"] = 1 / (1 + np.exp(-(base + effect))) - 1 / (1 + np.exp(-base))
    frame["responded"] = rng.random(size) < 1 / (1 + np.exp(-(base + frame["treated"] * effect)))
    return frame


@pytest.mark.slow
def test_a_rare_offers_baseline_is_not_pulled_up_to_the_common_ones(spec):
    train, customers = rare_offer_campaigns(20_000, seed=1), rare_offer_campaigns(5_000, seed=2)
    mortgage = (customers["offer_type"] == "mortgage").to_numpy()
    truth = customers["true_uplift"][mortgage].mean()

    def mortgage_uplift(**params) -> float:
        params = {"C": 0.01, **params}
        model = fit_uplift_model(train, dataclasses.replace(spec, estimator_params=params))
        return float(model.predict(customers)[mortgage].mean())

    # Under the common penalty the mortgage's baseline is pulled towards the card's, its
    # control arm predicted too high and its uplift a fraction of the truth; with its level
    # lightly penalised the uplift is right.
    assert mortgage_uplift() < 0.5 * truth
    assert abs(mortgage_uplift(level_penalty=0.01) - truth) < 0.2 * truth


@pytest.mark.parametrize("factor", ["level_penalty", "effect_penalty"])
def test_a_penalty_factor_of_one_is_the_common_penalty_and_must_be_positive(spec, factor):
    train = campaigns(3_000, seed=7)
    default = fit_uplift_model(train, spec, random_state=0)
    same = fit_uplift_model(
        train, dataclasses.replace(spec, estimator_params={"C": 1.0, factor: 1.0})
    )
    np.testing.assert_allclose(same.predict(train), default.predict(train))
    wrong = dataclasses.replace(spec, estimator_params={"C": 1.0, factor: 0})
    with pytest.raises(TrainingDataError, match=f"{factor} must be positive"):
        fit_uplift_model(train, wrong)


def simple_effect_campaigns(size: int, seed: int) -> pd.DataFrame:
    """Contacts (90 % treated, as a campaign's list with its control group) whose baseline
    depends on age, income, region and offer, and whose treatment effect on the log-odds only
    on the channel and the customer type: the effect is simpler than the baseline."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "offer_type": rng.choice(["card", "loan"], size),
            "channel": rng.choice(["email", "web"], size),
            "customer_type": rng.choice(["student", "affluent", "senior"], size),
            "region": rng.choice(list("abcdef"), size),
            "age": rng.uniform(18, 80, size),
            "income": rng.lognormal(10.8, 0.5, size),
        }
    )
    frame["customer_id"] = np.arange(size)
    region = dict(zip("abcdef", (0.0, 0.2, -0.2, 0.4, -0.4, 0.1), strict=True))
    base = (
        -3.0
        - ((frame["age"] - 40) / 20) ** 2
        + 0.8 * np.log(frame["income"] / 50_000)
        + 0.5 * (frame["offer_type"] == "loan")
        + frame["region"].map(region)
    )
    kind = frame["customer_type"]
    effect = 0.4 + 0.3 * (frame["channel"] == "web") + 0.6 * (kind == "affluent")
    effect = effect - 0.4 * (kind == "senior")
    frame["treated"] = rng.random(size) < 0.9
    frame["true_uplift"] = 1 / (1 + np.exp(-(base + effect))) - 1 / (1 + np.exp(-base))
    frame["responded"] = rng.random(size) < 1 / (1 + np.exp(-(base + frame["treated"] * effect)))
    return frame


def within_pair_correlation(predicted: np.ndarray, customers: pd.DataFrame) -> float:
    """Mean over offer × channel pairs of the correlation of predicted and true uplift."""
    truth = customers["true_uplift"].to_numpy()
    pair = (customers["offer_type"] + "/" + customers["channel"]).to_numpy()
    return float(
        np.mean([np.corrcoef(predicted[pair == k], truth[pair == k])[0, 1] for k in set(pair)])
    )


@pytest.mark.slow
def test_a_heavier_effect_penalty_ranks_customers_by_uplift_better(spec):
    wide = dataclasses.replace(
        spec,
        include=("offer_type", "channel", "customer_type", "region", "age", "income"),
        categorical=("offer_type", "channel", "customer_type", "region"),
    )
    gains, errors = [], []
    for seed in (1, 2, 3):
        train = simple_effect_campaigns(10_000, seed)
        customers = simple_effect_campaigns(5_000, 50 + seed)
        truth = customers["true_uplift"].to_numpy()
        predicted = [
            fit_uplift_model(
                train,
                dataclasses.replace(wide, estimator_params={"C": 0.1, "effect_penalty": factor}),
            ).predict(customers)
            for factor in (1.0, 10.0)
        ]
        common, heavy = (within_pair_correlation(p, customers) for p in predicted)
        gains.append(heavy - common)
        errors.append([np.sqrt(np.mean((p - truth) ** 2)) for p in predicted])
    # The effect's many attribute terms (by offer, by channel, in common) are mostly noise
    # the 10 % control rows cannot pin down; shrunk harder, the customers within a campaign
    # are ranked nearer their true uplift in every world, and the error is smaller overall.
    assert min(gains) > 0
    assert np.mean(errors, axis=0)[1] < np.mean(errors, axis=0)[0]


def test_a_heavier_effect_penalty_changes_the_fit_and_older_models_predict_as_fitted(spec):
    train = campaigns(3_000, seed=7)
    default = fit_uplift_model(train, spec, random_state=0)
    heavy = fit_uplift_model(
        train, dataclasses.replace(spec, estimator_params={"C": 1.0, "effect_penalty": 10.0})
    )
    assert not np.allclose(heavy.predict(train), default.predict(train))
    expected = default.predict(train)
    del default.components_["logistic"][0].effect_scale_  # as a model pickled before it
    np.testing.assert_allclose(default.predict(train), expected)


def holding_campaigns(size: int, seed: int) -> pd.DataFrame:
    """Randomised contacts of a common card and a rare mortgage offer (5 %) whose effect is
    1.4 lower on the log-odds for a customer who already holds the product offered."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "offer_type": rng.choice(["card", "mortgage"], size, p=[0.95, 0.05]),
            "channel": rng.choice(["email", "web"], size),
            "customer_type": rng.choice(["student", "affluent"], size),
            "age": rng.uniform(18, 80, size),
            "holds_card": (rng.random(size) < 0.4).astype(int),
            "holds_mortgage": (rng.random(size) < 0.4).astype(int),
        }
    )
    frame["customer_id"] = np.arange(size)
    frame["treated"] = rng.random(size) < 0.8
    held = np.where(frame["offer_type"] == "card", frame["holds_card"], frame["holds_mortgage"])
    base = -2.0 - ((frame["age"] - 40) / 25) ** 2
    effect = 1.2 - 1.4 * held
    frame["held"] = held
    frame["true_uplift"] = 1 / (1 + np.exp(-(base + effect))) - 1 / (1 + np.exp(-base))
    frame["responded"] = rng.random(size) < 1 / (1 + np.exp(-(base + frame["treated"] * effect)))
    return frame


@pytest.mark.slow
def test_holding_the_offered_product_is_learned_from_every_offer(spec):
    train, customers = holding_campaigns(30_000, seed=3), holding_campaigns(6_000, seed=4)
    mortgage = (customers["offer_type"] == "mortgage").to_numpy()
    held = customers["held"].to_numpy() == 1
    include = ("offer_type", "channel", "customer_type", "age", "holds_card", "holds_mortgage")

    def gap(uplift: np.ndarray) -> float:
        """Mortgage uplift of the customers without one minus that of the holders."""
        return float(uplift[mortgage & ~held].mean() - uplift[mortgage & held].mean())

    def fitted_gap(**params) -> float:
        params = {"C": 0.03, **params}
        model = fit_uplift_model(
            train, dataclasses.replace(spec, include=include, estimator_params=params)
        )
        return gap(model.predict(customers))

    truth = gap(customers["true_uplift"].to_numpy())
    plain = fitted_gap()
    pooled = fitted_gap(offered_product={"card": "holds_card", "mortgage": "holds_mortgage"})
    # From the mortgage's own few rows (5 %) the holding effect is mostly shrunk away; as one
    # column shared with the card's rows much more of it is learned.
    assert plain < 0.65 * truth
    assert pooled > plain + 0.15 * truth
    assert pooled < 1.1 * truth


def test_offered_product_names_columns_the_rows_have(spec):
    train = campaigns(2_000, seed=8)
    wrong = dataclasses.replace(
        spec, estimator_params={"C": 1.0, "offered_product": {"card": "holds_card"}}
    )
    with pytest.raises(
        TrainingDataError, match=r"offered_product needs the columns \['holds_card'\]"
    ):
        fit_uplift_model(train, wrong)


def test_a_model_fitted_before_offered_product_existed_still_predicts(spec):
    train = campaigns(3_000, seed=9)
    model = fit_uplift_model(train, spec, random_state=0)
    expected = model.predict(train)
    learner = model.components_["logistic"][0]
    del learner.params["offered_product"]  # as a model pickled before the parameter
    np.testing.assert_allclose(model.predict(train), expected)


def test_the_posterior_spread_follows_the_refits_and_covers_the_truth(spec):
    """The Laplace posterior's sd of a row's uplift is about the spread of the model refitted
    on fresh samples, larger on a pair without history, and +- 2 sd covers the true uplift."""
    test = campaigns(3_000, seed=99)
    inputs = test[["offer_type", "channel", "customer_type", "age"]]
    spreading = dataclasses.replace(spec, estimator_params={"C": 1.0, "spread_draws": 32})
    fitted = [
        fit_uplift_model(campaigns(8_000, seed=seed, without=("loan", "web")), spreading)
        for seed in range(8)
    ]
    predictions = np.array([model.predict(inputs) for model in fitted])
    spreads = np.array([model.predict_spread(inputs) for model in fitted])
    assert 0.7 < np.median(spreads.mean(axis=0) / predictions.std(axis=0)) < 1.6
    unseen = ((test["offer_type"] == "loan") & (test["channel"] == "web")).to_numpy()
    assert spreads[:, unseen].mean() > 1.3 * spreads[:, ~unseen].mean()
    covered = np.abs(predictions - test["true_uplift"].to_numpy()) < 2 * spreads
    assert covered.mean() > 0.85
    np.testing.assert_array_equal(fitted[0].predict_spread(inputs), spreads[0])  # seeded


def test_a_model_without_a_posterior_or_spread_draws_has_no_spread(spec):
    train = campaigns(3_000, seed=10)
    assert not fit_uplift_model(train, spec).reports_spread  # spread_draws 0, the default
    assert np.isnan(fit_uplift_model(train, spec).predict_spread(train)).all()
    spreading = dataclasses.replace(spec, estimator_params={"C": 1.0, "spread_draws": 8})
    model = fit_uplift_model(train, spreading, random_state=0)
    assert model.reports_spread and (model.predict_spread(train) > 0).all()
    del model.components_["logistic"][0].posterior_  # as a model pickled before it existed
    assert not model.reports_spread
    assert np.isnan(model.predict_spread(train)).all()
    boosted = UpliftModel(
        learner="s_learner", categorical_features=("offer_type", "channel", "customer_type"),
        booster_params={"max_iter": 20}, random_state=0,
    )  # fmt: skip
    columns = ["offer_type", "channel", "customer_type", "age"]
    boosted.fit(train[columns], train["responded"], treatment=train["treated"])
    assert np.isnan(boosted.predict_spread(train[columns])).all()


def test_spread_draws_must_be_a_whole_number(spec):
    wrong = dataclasses.replace(spec, estimator_params={"C": 1.0, "spread_draws": -4})
    with pytest.raises(TrainingDataError, match=r"spread_draws must be a whole number >= 0"):
        fit_uplift_model(campaigns(2_000, seed=11), wrong)


def test_effect_by_names_which_copies_of_the_effects_attribute_terms_are_fitted(spec):
    train = campaigns(3_000, seed=10)

    def fitted(**params):
        model = fit_uplift_model(
            train, dataclasses.replace(spec, estimator_params={"C": 1.0, **params})
        )
        return model, model.components_["logistic"][0]

    default, learner = fitted()
    by_channel, channel_learner = fitted(effect_by=["channel"])
    _, common_learner = fitted(effect_by=[])
    # x without the offer and channel one-hots: customer_type (2 levels) and age's splines.
    attributes = learner.design_.rows(train, without=["offer_type", "channel"]).shape[1]
    width = [m.regression_.coef_.shape[1] for m in (learner, channel_learner, common_learner)]
    assert width[0] - width[1] == len(OFFER_EFFECT) * attributes
    assert width[1] - width[2] == len(CHANNEL_EFFECT) * attributes
    assert channel_learner.effect_by_ == ["channel"]
    assert not np.allclose(by_channel.predict(train), default.predict(train))
    expected = default.predict(train)
    del learner.effect_by_  # as a model pickled before the parameter: every copy
    np.testing.assert_allclose(default.predict(train), expected)
    with pytest.raises(TrainingDataError, match=r"effect_by takes a list of \['channel', "):
        fitted(effect_by=["segment"])


def test_an_effect_shared_across_offers_is_learned_better_without_offer_copies(spec):
    """The affluent customers' extra effect is the same for every offer (``campaigns``): the
    offer copies of the effect's terms only add noise from each offer's own control rows."""

    def error(train: pd.DataFrame, customers: pd.DataFrame, effect_by: list[str]) -> float:
        params = {"C": 1.0, "effect_by": effect_by}
        model = fit_uplift_model(train, dataclasses.replace(spec, estimator_params=params))
        return float(np.sqrt(np.mean((model.predict(customers) - customers["true_uplift"]) ** 2)))

    for seed in (1, 2, 3):
        train, customers = campaigns(4_000, seed=20 + seed), campaigns(4_000, seed=30 + seed)
        both, by_channel = (error(train, customers, e) for e in (["offer", "channel"], ["channel"]))
        assert by_channel < both, (seed, by_channel, both)
