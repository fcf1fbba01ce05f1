"""Reports as a library (bp.report): the same files as the CLI, each outcome resolved once, and
the document model's renderers."""

import pytest

import bayes_pip as bp
from bayes_pip import document as doc
from bayes_pip.data import Dataset
from tests.conftest import run_main


RESOLVED = []
CLASSICAL = []


@pytest.fixture(scope="module")
def bundle():
    """The bundled review's report (exact engine), counting how often outcomes are resolved
    and how often a classical analysis is computed (outcome, its studies' rows, method)."""
    import bayes_pip.analysis

    original = Dataset.resolve
    classical = bayes_pip.analysis.classical_from

    def counting(self, outcome_id, level="auto"):
        RESOLVED.append(outcome_id)
        return original(self, outcome_id, level)

    def counting_classical(resolved, method="DL"):
        cells = resolved.rows.select_dtypes("number").to_numpy().tobytes()
        CLASSICAL.append((resolved.outcome.outcome, cells, method))
        return classical(resolved, method)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Dataset, "resolve", counting)
        mp.setattr(bayes_pip.analysis, "classical_from", counting_classical)
        return bp.report(bp.load(), engine="exact")


def test_public_names_are_listed():
    names = dir(bp)
    for name in ("load", "fit", "compare_priors", "report", "bma", "exact_batch"):
        assert name in names


def test_library_report_equals_the_cli_files(bundle, exact_report):
    r, out = exact_report
    # the console labels each P(benefit) range and says which outcomes share trials
    assert "P(benefit) 0.998 (across 7 priors: 0.680 to 0.998; without the 2 in conflict with " \
        "the data (sceptical, enthusiastic): 0.839 to 0.998)" in r.stdout
    assert "Not independent: secure_attachment_post, avoidant_attachment_post" in r.stdout
    files = bundle.files()
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(files)
    for name, content in files.items():
        if name.endswith((".md", ".csv", ".json", ".html")):
            assert (out / name).read_text(encoding="utf-8") == content, name


def test_each_outcome_is_resolved_once(bundle):
    assert sorted(RESOLVED) == sorted(bundle.outcomes)   # once each: fits and Bayes factors
    assert len(bundle.outcomes) == 7


def test_the_classical_analysis_is_computed_once_per_outcome_not_per_prior(bundle):
    """Every outcome's page compares several priors; its classical (DL or the review's method)
    analysis depends on the data alone and is computed once per table and method."""
    assert len(CLASSICAL) == len(set(CLASSICAL))
    with_rows = {o for o, r in bundle.outcomes.items() if r.fits[0].level != "summary"}
    assert len(with_rows) == 5 and {o for o, _, _ in CLASSICAL} == with_rows
    assert all(len(bundle.outcomes[o].fits) > 1 for o in with_rows)


def test_summary_frame_has_the_printed_numbers(bundle):
    frame = bundle.to_frame()
    assert list(frame["outcome"]) == list(bundle.outcomes)
    main = bundle.outcomes["parent_reported_depression_vs_alternative"].fits[0]
    row = frame.set_index("outcome").loc["parent_reported_depression_vs_alternative"]
    assert row["p_benefit"] == pytest.approx(main.p_benefit, abs=0)
    assert row["bayes_median"] == pytest.approx(main.effect.median, abs=0)
    assert bundle.main_file() == "summary_of_findings.md"


def test_one_outcome_has_no_summary():
    rep = bp.report(bp.load(), "parent_reported_depression_vs_alternative", engine="exact")
    assert rep.summary is None and rep.main_file() == \
        "parent_reported_depression_vs_alternative.md"
    assert "summary_of_findings.md" not in rep.files()


def test_renderers_escape_data_text_in_both_formats():
    page = doc.Document("t <b>", [doc.Heading("a | b <script>", 1),
                                  doc.Paragraph(("x ", doc.Code("id`x"), " ",
                                                 doc.Link("o", doc.local_href("o p.html")))),
                                  doc.Table(("h|1",), (("<i>c</i>|d",),)),
                                  doc.Items(("[x](javascript:y)",), note=True)])
    md = doc.markdown(page)
    assert "# a \\| b &lt;script>" in md
    assert "`idx`" in md and "[o](./o%20p.html)" in md
    assert "| h\\|1 |" in md and "&lt;i>c&lt;/i>\\|d" in md
    assert "[x]\\(javascript:y)" in md
    page_html = doc.html_page(page)
    assert "<script>" not in page_html and "&lt;i&gt;c&lt;/i&gt;|d" in page_html
    assert "<title>t &lt;b&gt;</title>" in page_html
    assert '<li class="note">[x](javascript:y)</li>' in page_html


def test_every_bayes_factor_paragraph_names_the_prior_and_the_width_range(bundle):
    """A Bayes factor sits beside P(benefit) only with what it asks, the prior on the pooled effect
    it depends on, its range over that prior's width, and no interval across the point mass."""
    files = bundle.files()
    checked = 0
    for outcome_id, out in bundle.outcomes.items():
        text = files[f"{outcome_id}.md"]
        paragraph = text[text.index("A Bayes factor answers"):].split("\n\n")[0]
        assert "prior on the pooled" in paragraph and "N(0, " in paragraph, outcome_id
        assert "By the width of a centred normal prior" in paragraph and "vague, SD 10" in paragraph, outcome_id
        assert "probability of no effect was" in paragraph, outcome_id
        assert "halfnormal" not in paragraph or out.fits[0].level != "summary", outcome_id
        checked += 1
    assert checked == 7


def test_reconstructed_reports_state_their_assumptions_and_counts(bundle):
    """Uniqueness is never claimed where it rests on inferred bounds; every reconstructed page
    prints the counts it fitted, the inferred bounds with their constraints.csv rows, the arm far
    below the number randomised, and that agreement with the review holds by construction."""
    files = bundle.files()
    reconstructed = [o for o, out in bundle.outcomes.items() if out.fits[0].level == "reconstructed"]
    assert sorted(reconstructed) == sorted(["secure_attachment_post", "avoidant_attachment_post",
                                            "disorganised_attachment_post",
                                            "insecure_to_secure_post"])
    for o in reconstructed:
        r = bundle.outcomes[o].fits[0].reconstruction
        assert r.assumptions and all("constraints.csv row" in a for a in r.assumptions)
        for name in (f"{o}.md", f"{o}.html", "summary_of_findings.md"):
            assert "the only" not in files[name].replace("the only maltreated", ""), (o, name)
        md = files[f"{o}.md"]
        assert "## Reconstructed tables" in md and "by construction" in md
        for row in r.tables[0]:
            assert (f"| {row['study']} | {row['events_t']}/{row['n_t']} | "
                    f"{row['events_c']}/{row['n_c']} |") in md
        # Cicchetti 2006b's intervention arm: 14 of the 53 randomised (constraints.csv row 5)
        flag = [f for f in r.flags if f.startswith("Cicchetti 2006b, intervention arm")]
        n_t = {row["study"]: row["n_t"] for row in r.tables[0]}["Cicchetti 2006b"]
        assert n_t < 53 / 2 and flag == [
            f"Cicchetti 2006b, intervention arm: {n_t} analysed, {100 * n_t / 53:.0f}% of its "
            "upper bound 53 (upper bound: 53 randomised to infant-parent psychotherapy; "
            "constraints.csv row " + flag[0].rsplit("row ", 1)[1]]
        assert flag[0] in md
    secure = bundle.outcomes["secure_attachment_post"].fits[0].reconstruction
    assert [row["n_t"] for row in secure.tables[0]] == [46, 14]


def test_uniqueness_wording_follows_the_inferred_bounds():
    from bayes_pip.reconstruct import arm_flags, consistent_text, which_tables

    assert which_tables(1, 0) == "the only integer table"
    assert which_tables(1, 2) == "one integer table"
    assert which_tables(3, 0) == "3 integer tables"
    assert consistent_text(0) == "consistent with every printed number"
    assert consistent_text(1).endswith("given 1 inferred bound")
    tables = [[[3, 10, 9, 40]], [[5, 24, 9, 40]]]   # two tables of study A: events_t, n_t, ...
    assert arm_flags([("A", "t", 50, "why")], ("A",), tables) == (
        "A, intervention arm: 10 to 24 analysed, 48% of its upper bound 50 (why)",)
    assert arm_flags([("A", "t", 48, "why")], ("A",), tables) == ()  # 24 is half of 48: not flagged


ATTACHMENT = ["secure_attachment_post", "avoidant_attachment_post", "disorganised_attachment_post",
              "insecure_to_secure_post"]


def test_each_attachment_report_names_the_outcomes_that_share_its_trials(bundle):
    files = bundle.files()
    for o in ATTACHMENT:
        md = files[f"{o}.md"]
        para = md[md.index("Not independent evidence"):].split("\n\n")[0]
        assert "(Cicchetti 1999a, Cicchetti 2006b; 168 participants)" in para, o
        assert all(f"({other}; the same trials" in para for other in ATTACHMENT if other != o), o
        assert f"({o};" not in para
    # secure attachment and insecure-to-secure change use identical Cicchetti 2006b tables
    md = files["secure_attachment_post.md"]
    assert "(insecure_to_secure_post; the same trials; identical counts in Cicchetti 2006b)" in md
    assert "Not independent" not in files["parental_depression_incidence.md"]
    # a one-outcome report says the same (the data set knows the other outcomes)
    alone = bp.report(bp.load(), "avoidant_attachment_post", engine="exact", prior="halfnormal-0.5")
    assert "disorganised_attachment_post; the same trials" in alone.outcomes[
        "avoidant_attachment_post"].markdown()


def test_sweep_says_which_outcomes_share_trials(bundle):
    from bayes_pip.summarise import sweep_text

    rows = [f for fits in bundle.fits.values() for f in fits]
    text = sweep_text(rows)
    assert text.rstrip().endswith("must not be counted as separate evidence.")
    assert "insecure_to_secure_post rest on the same trials (Cicchetti 1999a, Cicchetti 2006b)" in text
    assert "halfnormal" not in "\n".join(line for line in text.splitlines()
                                          if line.startswith("parental_depression_incidence"))


def test_no_figure_prints_a_probability_as_certain(bundle):
    """P(benefit) above 0.999 is printed '> 0.999' in figures as in text (never 1.000)."""
    import matplotlib.text
    from matplotlib import pyplot as plt

    from bayes_pip import figures

    fits = bundle.outcomes["insecure_to_secure_post"].fits
    assert fits[0].p_benefit > 0.9995
    for fig in (figures.sensitivity_plot(fits), figures.posterior_density_plot(fits[0])):
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        assert any("> 0.999" in t for t in texts)
        assert not any("1.000" in t or "0.000" in t for t in texts), texts
        plt.close(fig)
    # conflicting priors are marked in the sensitivity figure
    fig = figures.sensitivity_plot(fits)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "sceptical *" in labels and "halfnormal-0.5" in labels
    plt.close(fig)
    for name, content in bundle.files().items():
        if name.endswith((".md", ".html")):
            assert "P(benefit) = 1.000" not in content and "P(benefit) 1.000" not in content


def test_a_prior_that_does_not_apply_to_one_outcome_is_replaced_there_and_named(tmp_path):
    """report --all --prior turner: Turner's table (RR/OR) where it applies, its SMD counterpart
    (Rhodes et al. 2015) on the SMD outcomes, each replacement named; one named SMD outcome under
    --prior turner is still refused."""
    b = bp.report(bp.load(), engine="exact", prior="turner")
    mains = {o: r.fits[0].prior.name for o, r in b.outcomes.items()}
    assert mains["secure_attachment_post"] == "turner"
    assert mains["parent_reported_depression_vs_alternative"] == "rhodes"
    assert mains["parent_reported_depression"] == "rhodes"
    assert b.notes == [f"prior 'turner' does not apply to SMD outcomes; its counterpart for SMD, "
                       f"'rhodes', is used for '{o}'" for o in
                       ("parent_reported_depression", "parent_reported_depression_vs_alternative")]
    assert b.notes[1] in b.outcomes["parent_reported_depression_vs_alternative"].markdown()
    r = run_main("report", "parent_reported_depression", "--prior", "turner", "--out",
                 str(tmp_path / "r"))
    assert r.returncode == 2 and "is for RR, OR outcomes" in r.stderr
    assert not (tmp_path / "r").exists()


def test_discussion_gives_the_prior_range_with_and_without_conflicting_priors(bundle):
    from bayes_pip.formats import prob_text

    for o, out in bundle.outcomes.items():
        fits = out.fits
        flagged = [f for f in fits if f.prior_data_conflict and f.prior_data_conflict.flagged]
        md = out.markdown()
        if not flagged:
            assert "The data contradict" not in md, o
            continue
        rest = [f for f in fits if f not in flagged]
        sentence = (f"The data contradict {len(flagged)} of these priors "
                    f"({', '.join(f.prior.shown for f in flagged)}; Box's prior-predictive check, "
                    f"p < 0.05); without them it ranged from "
                    f"{prob_text(min(f.p_benefit for f in rest))} to "
                    f"{prob_text(max(f.p_benefit for f in rest))}.")
        assert sentence in md, o
    assert "without them it ranged from 0.839 to 0.998" in \
        bundle.outcomes["secure_attachment_post"].markdown()


def test_report_in_worker_processes_equals_the_serial_one(bundle):
    """`report --jobs 2`: the outcomes fitted in two spawned worker processes give every file
    (PNG bytes included) of the serial report."""
    parallel = bp.report(bp.load(), engine="exact", jobs=2)
    assert parallel.files() == bundle.files()


@pytest.mark.slow
def test_report_all_with_jobs_equals_serial_with_the_default_engines(tmp_path):
    """The same with the default engines (NUTS, binomial-exact, multinomial) through the CLI:
    the written directories are byte-identical."""
    serial = run_main("report", "--all", "--out", str(tmp_path / "a"))
    parallel = run_main("report", "--all", "--jobs", "2", "--out", str(tmp_path / "b"))
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(names) > 20
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_figures_are_drawn_only_when_needed_and_pickle_as_bytes():
    """A library report draws no figure for its Markdown or records; its files draw each figure
    once (the same bytes on a second call); a pickled page carries plain PNG bytes (what the
    worker processes of `report --jobs` send back)."""
    import pickle

    from bayes_pip import figures
    from bayes_pip.document import Figures, LazyPNG

    drawn = []
    real = figures.png_bytes

    def counting(fig):
        drawn.append(fig)
        return real(fig)

    figures.png_bytes = counting
    try:
        rep = bp.report(bp.load(), "avoidant_attachment_post", engine="exact")
        out = rep.outcomes["avoidant_attachment_post"]
        md = out.markdown()
        assert "avoidant_attachment_post_forest.png" in md and drawn == []
        items = [png for b in out.page.blocks if isinstance(b, Figures) for _, png in b.items]
        assert items and all(isinstance(p, LazyPNG) for p in items)
        files = out.files()
        assert len(drawn) == len(items)
        assert out.files() == files and len(drawn) == len(items)
        copy = pickle.loads(pickle.dumps(out.page))
        assert [png for b in copy.blocks if isinstance(b, Figures) for _, png in b.items] == [
            files[name] for b in out.page.blocks if isinstance(b, Figures) for name, _ in b.items]
    finally:
        figures.png_bytes = real
