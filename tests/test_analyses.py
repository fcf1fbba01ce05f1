"""The analysis unit above the outcome (bayes_pip.analyses): every outcome row is one analysis
of its model, commands dispatch on the analysis's model and never on the measure, and a new
model registered from outside the package runs `fit` and `compare-priors` for an analysis
that spans two outcomes without any other file naming it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import bayes_pip as bp
from bayes_pip import analyses
from bayes_pip.analyses import Analysis
from bayes_pip.errors import InputError
from conftest import run_main

PAIR = "secure_and_disorganised_post"


def test_every_outcome_row_is_one_analysis_of_its_model():
    data = bp.load()
    found = bp.list_analyses(data)
    assert [a.id for a in found] == list(data.outcomes["outcome"])
    models = {a.id: a.model for a in found}
    assert models["attachment_category_post"] == "multinomial"
    assert models["secure_attachment_post"] == "random-effects"
    assert {m for m in models.values()} == {"multinomial", "random-effects"}
    category = next(a for a in found if a.model == "multinomial")
    assert category.parts == ("secure", "avoidant", "resistant", "disorganised")
    assert category.to_dict() == {"id": "attachment_category_post", "model": "multinomial",
                                  "outcomes": ["attachment_category_post"],
                                  "parts": ["secure", "avoidant", "resistant", "disorganised"]}


def test_an_unknown_analysis_is_the_datasets_one_line_error():
    with pytest.raises(InputError, match="unknown outcome 'secure_attachment'"):
        analyses.analysis_of(bp.load(), "secure_attachment")


@dataclass
class PairRecord:
    analysis: dict
    fits: list

    def to_dict(self) -> dict:
        return {"analysis": self.analysis, "fits": [f.to_dict() for f in self.fits]}


class Pair:
    """A toy model of two outcomes side by side (each by the exact engine)."""

    name = "toy-pair"
    describe = "two outcomes side by side"

    def analyses(self, dataset):
        return [Analysis(PAIR, self.name, ("secure_attachment_post",
                                           "disorganised_attachment_post"))]

    def refuse(self, command, analysis, given):
        for option, present in given.items():
            if present:
                raise InputError(f"{option} is not available for the toy pair")

    def check_engine(self, engine, analysis):
        if engine not in ("auto", "exact"):
            raise InputError("the toy pair runs the exact engine")

    def settings(self, engine, draws, tune, target_accept, chains=None):
        return None                       # the exact engine does not sample

    def prior_outcome(self, outcome):
        return outcome

    def fit(self, dataset, analysis, prior, engine, level, seed, settings, progress,
            prior_sets):
        return PairRecord(analysis.to_dict(),
                          [bp.fit(dataset, o, prior, "exact") for o in analysis.outcomes])

    def compare(self, dataset, analysis, prior_names, engine, level, seed, settings, progress,
                prior_sets):
        return [self.fit(dataset, analysis, p, engine, level, seed, settings, progress,
                         prior_sets) for p in prior_names or ("halfnormal-0.5", "sceptical")]

    def text(self, record):
        return "; ".join(f"{f.outcome} {f.effect.median:.2f}" for f in record.fits)

    def comparison_text(self, records):
        return "\n".join(self.text(r) for r in records)

    def write(self, out_dir, record):
        path = Path(out_dir) / f"{record.analysis['id']}.json"
        path.write_text(json.dumps(record.to_dict()))
        return [path]


@pytest.fixture()
def pair(monkeypatch):
    monkeypatch.setitem(analyses.MODELS, Pair.name, Pair())
    yield


def test_a_model_registered_from_outside_runs_fit_and_compare(pair, tmp_path):
    """The toy model's analysis spans two outcomes; `fit` and `compare-priors` run it, and its
    numbers are the single-outcome fits' (same engine, same prior: equal to 1e-12)."""
    r = run_main("fit", PAIR, "--json", "--prior", "sceptical", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["analysis"]["outcomes"] == ["secure_attachment_post",
                                              "disorganised_attachment_post"]
    assert record.pop("schema_version") >= 1            # every printed record carries it
    assert json.loads((tmp_path / f"{PAIR}.json").read_text()) == record
    alone = json.loads(run_main("fit", "secure_attachment_post", "--engine", "exact",
                                "--prior", "sceptical", "--json").stdout)
    assert record["fits"][0]["effect"]["median"] == pytest.approx(alone["effect"]["median"],
                                                                  rel=1e-12)
    r = run_main("compare-priors", PAIR)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("secure_attachment_post") == 2
    r = run_main("fit", PAIR, "--moderator", "duration_months")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--moderator is not available for the toy pair" in r.stderr
    r = run_main("fit", PAIR, "--engine", "pymc")
    assert r.returncode == 2 and "runs the exact engine" in r.stderr


def test_a_categorical_comparison_refuses_a_prior_before_fitting(monkeypatch):
    """`compare-priors` of the multinomial model with a prior that cannot apply (sceptical needs
    an MCID) is refused in one line before any fit runs (it used to fit the first prior, about
    6 s, and then stop)."""
    from bayes_pip import categorical

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the priors were checked")

    monkeypatch.setattr(categorical, "fit_categorical", no_fit)
    r = run_main("compare-priors", "attachment_category_post", "--priors",
                 "halfnormal-0.5,sceptical")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "has no mcid" in r.stderr
