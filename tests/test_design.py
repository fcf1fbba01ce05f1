"""Multi-arm and cluster-randomised trials (Cochrane Handbook 23.3.4 and 23.1.4), against values
computed by hand from the Handbook's formulas."""

import math

import numpy as np
import pandas as pd
import pytest

from bayes_pip.classical import classical_from
from bayes_pip.data import load_frames
from bayes_pip.design import combine_means
from bayes_pip.errors import DataWarning, InputError


def outcomes(measure="RR", comparisons=("c",)):
    return pd.DataFrame({"outcome": [f"o{i}" for i in range(len(comparisons))],
                         "label": "outcome", "comparison": list(comparisons),
                         "measure": measure, "benefit": "lower"})


def dichotomous_rows():
    """Trial A: two PIP arms against one shared control arm (20/60); trial B: two arms."""
    return pd.DataFrame({
        "outcome": "o0", "study": ["Trial A", "Trial A", "Trial B"],
        "arm_t": ["dyadic", "group", ""], "arm_c": ["usual care", "usual care", ""],
        "events_t": [10, 15, 12], "n_t": [50, 50, 40],
        "events_c": [20, 20, 18], "n_c": [60, 60, 41], "source": "test"})


def effects(data, mode):
    return classical_from(data.with_multi_arm(mode).resolve("o0", "study"))


def test_a_shared_arm_is_refused_by_default():
    data = load_frames(outcomes(), dichotomous_rows())
    with pytest.raises(InputError) as err:
        effects(data, "refuse")
    message = str(err.value)
    assert "'Trial A'" in message and "'usual care'" in message and "count 2 times" in message
    assert "--multi-arm split" in message and "--multi-arm combine" in message


def test_split_divides_the_shared_control_arm():
    """Handbook: split the shared group, 20/60 becomes 10/30 in each comparison."""
    a = effects(load_frames(outcomes(), dichotomous_rows()), "split")
    es = a.effects
    assert es.study == ("Trial A (dyadic vs usual care)", "Trial A (group vs usual care)",
                        "Trial B")
    np.testing.assert_allclose(es.n_c, [30, 30, 41])
    np.testing.assert_allclose(es.events_c, [10, 10, 18])
    by_hand = [(math.log((10 / 50) / (10 / 30)), 1 / 10 - 1 / 50 + 1 / 10 - 1 / 30),
               (math.log((15 / 50) / (10 / 30)), 1 / 15 - 1 / 50 + 1 / 10 - 1 / 30),
               (math.log((12 / 40) / (18 / 41)), 1 / 12 - 1 / 40 + 1 / 18 - 1 / 41)]
    np.testing.assert_allclose(es.y, [y for y, _ in by_hand], rtol=1e-14)
    np.testing.assert_allclose(es.v, [v for _, v in by_hand], rtol=1e-14)
    rec = a.record()
    assert rec.participants == 50 + 50 + 60 + 40 + 41  # the shared arm counted once
    assert any("split" in n for n in rec.adjustments)


def test_combine_merges_the_pip_arms():
    es = effects(load_frames(outcomes(), dichotomous_rows()), "combine").effects
    assert es.study == ("Trial A", "Trial B")
    np.testing.assert_allclose(es.events_t, [25, 12])
    np.testing.assert_allclose(es.n_t, [100, 40])
    np.testing.assert_allclose(es.y[0], math.log((25 / 100) / (20 / 60)), rtol=1e-14)


def test_combined_means_and_sds_follow_the_handbook():
    """Table 6.5.a: n 20 and 30, means 10 and 14, SDs 4 and 5."""
    n, m, sd = combine_means(np.array([20.0, 30.0]), np.array([10.0, 14.0]), np.array([4.0, 5.0]))
    assert n == 50 and m == pytest.approx(12.4, rel=1e-15)
    assert sd == pytest.approx(math.sqrt((19 * 16 + 29 * 25 + 20 * 30 / 50 * 16) / 49), rel=1e-15)
    rows = pd.DataFrame({
        "outcome": "o0", "study": ["A", "A"], "arm_t": ["x", "y"], "arm_c": ["c", "c"],
        "mean_t": [10, 14], "sd_t": [4, 5], "n_t": [20, 30],
        "mean_c": [15, 15], "sd_c": [6, 6], "n_c": [40, 40], "source": "test"})
    es = effects(load_frames(outcomes("MD"), rows), "combine").effects
    assert es.y[0] == pytest.approx(12.4 - 15, rel=1e-14)
    assert es.v[0] == pytest.approx(sd**2 / 50 + 36 / 40, rel=1e-14)


def test_cluster_trial_uses_the_design_effect():
    """icc 0.05, mean cluster size 11: design effect 1.5; 30/90 vs 20/90 becomes 20/60 vs
    13.33/60 (the ratio is unchanged, the variance grows by the design effect's share)."""
    rows = dichotomous_rows().iloc[[2]].assign(study="Cluster C", events_t=30, n_t=90,
                                                events_c=20, n_c=90, icc="0.05",
                                                cluster_size="11")
    es = effects(load_frames(outcomes(), rows), "refuse").effects
    np.testing.assert_allclose([es.events_t[0], es.n_t[0], es.events_c[0], es.n_c[0]],
                               [20, 60, 20 / 1.5, 60])
    assert es.y[0] == pytest.approx(math.log(1.5), rel=1e-14)
    assert es.v[0] == pytest.approx(1 / 20 - 1 / 60 + 1.5 / 20 - 1 / 60, rel=1e-14)


def test_cluster_trial_without_icc_is_refused():
    rows = dichotomous_rows().iloc[[2]]
    trials = pd.DataFrame({"study": ["Trial B"], "cluster_randomised": ["yes"],
                           "icc": [""], "cluster_size": [""], "source": ["test"]})
    data = load_frames(outcomes(), rows, trials=trials)
    with pytest.raises(InputError, match="cluster-randomised.*icc and cluster_size"):
        effects(data, "refuse")
    trials.loc[0, ["icc", "cluster_size"]] = ["0.02", "26"]
    es = effects(load_frames(outcomes(), rows, trials=trials), "refuse").effects
    assert es.n_t[0] == pytest.approx(40 / 1.5)


def test_an_arm_in_two_comparisons_is_a_warning():
    rows = pd.DataFrame({"outcome": ["o0", "o1"], "study": "Trial A", "arm_t": "dyadic",
                         "arm_c": ["usual care", "counselling"], "events_t": 10,
                         "n_t": 50, "events_c": 20, "n_c": 60, "source": "test"})
    with pytest.warns(DataWarning, match="'dyadic' is in comparisons c and d"):
        load_frames(outcomes(comparisons=("c", "d")), rows)


def test_bundled_pip_marks_its_multi_arm_and_cluster_trials():
    """The moment study rows are added, the right adjustment applies: Sleed 2013 is refused
    until an ICC and a mean cluster size are given (none was found)."""
    from bayes_pip.data import load_dataset

    data = load_dataset()
    t = data.trials.set_index("study")
    assert t.loc["Cicchetti 2006b", "multi_arm"] == "yes" and t.loc["Cooper 2003", "multi_arm"] == "yes"
    assert t.loc["Sleed 2013", "cluster_randomised"] == "yes"
    assert np.isnan(t.loc["Sleed 2013", "icc"]) and "not found" in t.loc["Sleed 2013", "cluster_source"]
    o = data.outcomes.iloc[[0]]
    rows = pd.DataFrame({"outcome": o["outcome"].iloc[0], "study": ["Sleed 2013"], "n_t": [88],
                         "n_c": [75], "events_t": [30], "events_c": [20],
                         "mean_t": [1.0], "sd_t": [1.0], "mean_c": [0.5], "sd_c": [1.0],
                         "source": ["test"]})
    trials = data.trials.astype(str).replace("nan", "")
    with_rows = load_frames(o, rows, trials=trials)
    with pytest.raises(InputError, match="'Sleed 2013' is cluster-randomised"):
        classical_from(with_rows.resolve(o["outcome"].iloc[0], "study"))


def test_row_labels_map_back_to_their_trial_and_other_names_stay_whole():
    import pandas as pd

    from bayes_pip.design import trial_names
    from bayes_pip.pages import trials_of

    assert trial_names("Cooper 2003 (psychodynamic vs routine care)") == (
        "Cooper 2003 (psychodynamic vs routine care)", "Cooper 2003")
    assert trial_names("Smith (2001)") == ("Smith (2001)",)
    trials = pd.DataFrame({"study": ["Cooper 2003", "Smith (2001)", "Other"]})
    got = trials_of(trials, ["Cooper 2003 (psychodynamic vs routine care)", "Smith (2001)"], None)
    assert list(got["study"]) == ["Cooper 2003", "Smith (2001)"]
