"""Files under an output directory, written atomically.

Every output is staged in a private temporary directory inside the target and its files are
renamed into place only once all of them have been produced, so a reader (or a concurrent run)
sees either the old file or the new one, never half of one, and a failed run leaves nothing.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import errno
import html
import re
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import urllib.parse
from pathlib import Path

from bayes_pip.record import versioned
from bayes_pip import figures, measures
from bayes_pip.design import trial_names
from bayes_pip.errors import InputError, OutputComplete
from bayes_pip.summarise import (bma_sentence, conflict_lines, discussion_sentences,
                                 engine_text, level_text, num, p_value_text, prior_used,
                                 prob_text)


WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


@contextlib.contextmanager
def write_errors_are_input_errors(target: Path):
    """Disk full, quota, permissions: a one-line error naming the output (exit 2)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRORS:
            raise
        raise InputError(f"cannot write the output ({exc.strerror})", file=str(target)) from None


def check_output_dir(target) -> Path:
    """Before any work: ``target`` is a directory, or can be created as one (its nearest
    existing ancestor is a writable directory; no file or dangling link on the way)."""
    target = Path(target)
    if target.is_symlink() and not target.exists():
        raise InputError("is a dangling symbolic link; give a directory", file=str(target))
    if target.exists():
        if not target.is_dir():
            raise InputError("exists and is not a directory; give a directory", file=str(target))
        ancestor = target
    else:
        ancestor = target.parent
        while not ancestor.exists():
            if ancestor.is_symlink():
                raise InputError(f"{ancestor} is a dangling symbolic link", file=str(target))
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise InputError(f"cannot create it: {ancestor} is a file, not a directory",
                             file=str(target))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write there: {ancestor} is not writable", file=str(target))
    return target


@contextlib.contextmanager
def signals_deferred(target: Path):
    """Hold Ctrl-C and SIGTERM until the block has finished, then report them.

    Python runs signal handlers in the main thread only, so replacing the handlers holds a
    signal whichever thread the kernel delivers it to (blocking it with pthread_sigmask held
    it for the main thread only: a SIGTERM taken by a worker thread stopped a report set half
    moved). A signal that arrived is raised afterwards as OutputComplete: the output is whole.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise OutputComplete(caught[0], str(target))


@contextlib.contextmanager
def staged_directory(target: Path):
    """Yield a private staging directory; on success move its files into ``target`` atomically.

    On any error the staging directory is removed and ``target`` is left as it was.
    """
    target = check_output_dir(target)
    created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".bayes_pip-stage-", dir=target))
    except OSError as exc:
        raise InputError(f"cannot create the output directory ({exc.strerror})",
                         file=str(target)) from None
    done = False
    try:
        with write_errors_are_input_errors(target):
            yield stage
        # Ctrl-C or SIGTERM wait until the whole set is in place (no mix of old and new files)
        with signals_deferred(target):
            for src in sorted(stage.rglob("*")):
                if src.is_file():
                    dest = target / src.relative_to(stage)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dest)
            done = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not done:
            shutil.rmtree(target, ignore_errors=True)  # it was made for this run only


def json_text(obj) -> str:
    return json.dumps(versioned(obj), indent=2, allow_nan=False) + "\n"


def check_free_space(stage: Path, idata, target: Path) -> None:
    """Refuse (exit 2) before writing InferenceData that the disk has no room for: h5py does
    not survive running out of space mid-write (SIGSEGV, a half-written file left behind)."""
    need = sum(int(idata[g].nbytes) for g in idata.groups()) * 1.2 + (1 << 20)
    free = shutil.disk_usage(stage).free
    if free < need:
        raise InputError(f"cannot write the output (not enough free space: the draws need about "
                         f"{need / 1e6:.1f} MB, {free / 1e6:.1f} MB are free)", file=str(target))


def write_fit(out_dir: Path, result) -> list[Path]:
    """Write a fit's JSON summary and, for MCMC, its InferenceData as netCDF."""
    s = result
    stem = f"{s.outcome}__{s.prior.name}__{s.engine}"
    written = []
    with staged_directory(Path(out_dir)) as stage:
        inside(stage, f"{stem}.json").write_text(json_text(s.to_dict()), encoding="utf-8")
        written.append(Path(out_dir) / f"{stem}.json")
        if result.mcmc:
            check_free_space(stage, result.idata, Path(out_dir))
            result.idata.to_netcdf(str(inside(stage, f"{stem}.nc")), engine="h5netcdf")
            written.append(Path(out_dir) / f"{stem}.nc")
    return written


# ---------------------------------------------------------------------------------------------
# per-outcome reports and the summary of findings
# ---------------------------------------------------------------------------------------------


def provenance_text(metadata: dict, directory) -> str:
    """The limits paragraph of a data set (dataset.toml), or a plain pointer to its sources."""
    return metadata.get("limits") or (f"Study data from {directory}; each row's source is in "
                                      "studies.csv.")


def interval_text(d) -> str:
    """'median [low, high]' of an Interval-like record; '-' when there is none."""
    if not d:
        return "-"
    return f"{num(d.median)} [{num(d.ci_low)}, {num(d.ci_high)}]"


def published_text(p: dict | None) -> str:
    return "-" if not p else f"{p.estimate:g} [{p.ci_low:g}, {p.ci_high:g}]"


def dl_text_short(d: dict | None) -> str:
    return "-" if not d else f"{num(d.estimate)} [{num(d.ci_low)}, {num(d.ci_high)}]"


def sensitivity_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["prior", f"{rows[0].measure} median [95% CrI]", "tau median",
              "95% prediction interval", "P(benefit)", "P(beyond MCID)", "P(harm)",
              "prior-data conflict"]
    body = []
    for r in rows:
        pred = ("-" if not r.prediction else
                f"[{num(r.prediction.ci_low)}, {num(r.prediction.ci_high)}]")
        c = r.prior_data_conflict
        body.append([r.prior.name, interval_text(r.effect),
                     num(r.tau.median) if r.tau else "-", pred,
                     prob_text(r.p_benefit, r.probability_draws),
                     prob_text(r.p_mcid, r.probability_draws) if r.p_mcid is not None else "-",
                     prob_text(r.p_harm, r.probability_draws) if r.p_harm is not None else "-",
                     "-" if c is None else (f"yes (p = {p_value_text(c.p_value)})" if c.flagged
                                            else "no")])
    s = rows[0]
    if s.dl:
        d = s.dl
        pred = ("-" if not d.prediction else
                f"[{num(d.prediction.ci_low)}, {num(d.prediction.ci_high)}]")
        body.append([d.method_label, dl_text_short(d), num(d.tau), pred, "-", "-", "-", "-"])
    if s.published:
        body.append(["published (review)", published_text(s.published), "-", "-", "-", "-",
                     "-", "-"])
    return header, body


def study_table(main: dict) -> tuple[list[str], list[list[str]]]:
    header = ["study", f"observed {main.measure} [95% CI]", "shrunken median [95% CrI]",
              "provenance"]
    body = []
    for st in main.studies:
        obs = next(s for s in main.dl.studies if s.study == st.study)
        body.append([st.study, dl_text_short(obs), interval_text(st), obs.provenance])
    return header, body


# what can turn text into markup or structure: raw HTML and autolinks (< then a letter, /, ! or
# ?), entities, a table cell's end, inline links and images, line ends (and the backslash, so
# that an escape in the data cannot undo ours). Emphasis and code spans are left alone: they
# change no structure, and escaping them would fill the raw text with backslashes.
_MD_SPECIAL = re.compile(r"\\|\||<(?=[A-Za-z/!?])|&(?=[A-Za-z#])|\]\(|[\x00-\x1f\x7f]")


def _md_sub(m: re.Match) -> str:
    ch = m.group(0)
    if ch == "<":
        return "&lt;"
    if ch == "&":
        return "&amp;"
    if ch == "](":
        return "]\\("
    if len(ch) == 1 and (ord(ch) < 0x20 or ch == "\x7f"):
        return " "
    return "\\" + ch


def md_escape(text) -> str:
    """Text from data files (names, labels, dataset.toml fields, moderator levels, prior
    sources) as literal Markdown: it never becomes HTML, a link, an image or a new table column.
    Text without such characters is unchanged (our numbers, "[0.52, 1.04]", "> 0.999")."""
    return _MD_SPECIAL.sub(_md_sub, str(text))


def md_table(header, body) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def html_table(header, body) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


HTML_STYLE = """body{font-family:Georgia,serif;max-width:60em;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
td,th{border:1px solid #bbb;padding:0.25em 0.6em;text-align:left}th{background:#eee}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}.note{color:#555;font-size:0.92em}
blockquote{border-left:4px solid #1f77b4;margin:1em 0;padding:0.2em 1em;background:#f5f8fc}
body.wide{max-width:98em}td{white-space:nowrap}td:first-child{white-space:normal}"""


def html_page(title: str, body: str, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head>"
            f"<body{cls}>\n{body}\n</body></html>\n")


def img_tag(png: bytes, alt: str) -> str:
    return (f"<img alt=\"{html.escape(alt)}\" "
            f"src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\">")


def bma_likelihood(b) -> str:
    """Which likelihood a report's Bayes factors use, in words."""
    if b.likelihood == "binomial-normal":
        return ("with the binomial-normal likelihood on the arm counts, as the headline fit "
                "(not comparable with normal-normal marginal likelihoods)")
    return "with the normal-normal likelihood on each study's effect estimate"


def bma_table(b) -> tuple[list[str], list[list[str]]]:
    header = ["model", "log marginal likelihood", "prior probability", "posterior probability"]
    return header, [[m.title, f"{m.log_marginal_likelihood:.3f}", f"{m.prior_probability:.3f}",
                     f"{m.posterior_probability:.3f}"] for m in b.models]


def moderator_section(rec: dict) -> tuple[list[str], list[str], dict[str, bytes]]:
    """Markdown lines, HTML fragments and figures of a report's moderator section, from a
    Bayesian meta-regression record (:func:`bayes_pip.moderation.bayes_moderators`)."""
    from bayes_pip.moderation import analysis_line, coefficient_table, sentence, value_lines

    pngs = {}
    if len(rec["moderators"]) == 1:
        name = f"{rec['outcome']}_moderator_{rec['moderators'][0]['name']}.png"
        pngs[name] = figures.png_bytes(figures.bubble_plot(rec))
    table = coefficient_table(rec)
    title = f"Moderators: {', '.join(m['name'] for m in rec['moderators'])}"
    md = ([f"## {md_escape(title)}", "", "> " + md_escape(sentence(rec)), "", md_table(*table),
           "", md_escape(analysis_line(rec)), ""] + [f"- {md_escape(n)}" for n in rec["notes"]]
          + [""] + [f"- {md_escape(line)}" for line in value_lines(rec)] + [""]
          + [f"![{n}]({n})" for n in pngs] + [""])
    body = [f"<h2>{html.escape(title)}</h2>",
            f"<blockquote>{html.escape(sentence(rec))}</blockquote>", html_table(*table),
            f"<p>{html.escape(analysis_line(rec))}</p>",
            "<ul>" + "".join(f"<li class=\"note\">{html.escape(n)}</li>" for n in rec["notes"])
            + "".join(f"<li>{html.escape(line)}</li>" for line in value_lines(rec)) + "</ul>"]
    body += [img_tag(png, name) for name, png in pngs.items()]
    return md, body, pngs


def outcome_report(fits: list, provenance: str, bma=None,
                   moderator: dict | str | None = None, trials=None) -> dict[str, bytes | str]:
    """Files of one outcome's report: {relative name: content}. ``fits[0]`` is the main fit;
    ``bma`` (optional) the Bayes factors and model averaging under its prior, or the one-line
    reason they could not be computed; ``moderator``
    (optional) a Bayesian meta-regression record (:mod:`bayes_pip.moderation`), or the one-line
    reason it could not be fitted."""
    main = fits[0]
    mod_md, mod_html, mod_pngs = ([], [], {})
    if isinstance(moderator, str):
        mod_md = ["## Moderators", "", f"Not analysed: {md_escape(moderator)}", ""]
        mod_html = ["<h2>Moderators</h2>", f"<p>Not analysed: {html.escape(moderator)}</p>"]
    elif moderator is not None:
        mod_md, mod_html, mod_pngs = moderator_section(moderator)
    rows = list(fits)
    o = main.outcome
    figs = {f"{o}_forest.png": figures.forest_plot(main),
            f"{o}_posterior_mu.png": figures.posterior_density_plot(fits[0]),
            f"{o}_sensitivity.png": figures.sensitivity_plot(rows)}
    if main.tau:
        figs[f"{o}_prior_posterior_tau.png"] = figures.prior_posterior_plot(fits[0], "tau")
    pngs = {name: figures.png_bytes(fig) for name, fig in figs.items()}
    sentences = discussion_sentences(main, rows)
    sens_h, sens_b = sensitivity_table(rows)
    st_h, st_b = study_table(main) if main.studies else (None, None)
    facts = [("Data", level_text(main)), ("Engine", engine_text(main)),
             ("Main prior", f"{main.prior.name}: {prior_used(main)}"),
             ("Direction of benefit", f"{main.measure} "
              f"{'>' if main.benefit == 'higher' else '<'} "
              f"{measures.get(main.measure).null:g}"),
             ("Seed and versions", (f"seed {main.settings.seed}" if main.settings.seed
                                  is not None else "closed form, no random numbers") + "; " + ", ".join(
                 f"{k} {v}" for k, v in main.settings.versions.items()))]
    if main.published:
        p = main.published
        facts.append(("Published result", f"{main.measure} {published_text(p)}, k = {p.k}, "
                      f"N = {p.participants}, GRADE {p.grade or 'not given'} "
                      f"({p.source})"))
    if main.dl and main.dl.published:
        facts.append(("Agreement with the review", main.dl.published.agreement))
    notes = list(dict.fromkeys(n for r in rows for n in r.notes))

    md = [f"# {md_escape(main.label)}", "", f"Outcome `{o}` ({md_escape(main.comparison)}).",
          ""]
    md += [f"- **{k}:** {md_escape(v)}" for k, v in facts]
    md += ["", "## For the discussion section", "", "> " + md_escape(" ".join(sentences)), "",
           "## Sensitivity to the prior", "", md_table(sens_h, sens_b), "",
           f"P(benefit): posterior probability that the pooled effect favours "
           f"{md_escape(main.intervention)} "
           f"({main.measure} {'>' if main.benefit == 'higher' else '<'} "
           f"{measures.get(main.measure).null:g}); P(beyond MCID): beyond "
           f"{main.measure} {main.mcid:g}." if main.mcid is not None else "", "",
           *map(md_escape, conflict_lines(rows)), ""]
    bma_title = "Is there an effect? Bayes factors and model averaging"
    if isinstance(bma, str):
        md += [f"## {bma_title}", "", f"Not computed: {md_escape(bma)}", ""]
    elif bma is not None:
        bma_h, bma_b = bma_table(bma)
        md += [f"## {bma_title}", "",
               "> " + md_escape(bma_sentence(bma)), "", md_table(bma_h, bma_b), "",
               f"Exact marginal likelihoods (quadrature) {bma_likelihood(bma)}; "
               f"`python -m bayes_pip bma {o}` prints the details.", ""]
    md += mod_md
    if st_h:
        md += ["## Studies", "", md_table(st_h, st_b), ""]
    studies = [st.study for st in main.studies] if main.studies else None
    trial_md, trial_html = trial_sections(trials, studies, main.comparison)
    md += trial_md
    md += ["## Figures", ""] + [f"![{name}]({name})" for name in pngs] + [""]
    md += (["## Provenance and limits", "", md_escape(provenance), ""]
           + [f"- {md_escape(n)}" for n in notes] + [""])
    md += ["## Priors", ""] + [f"- **{md_escape(r.prior.name)}** ({md_escape(prior_used(r))}): "
                               f"{md_escape(r.prior.source)}" for r in rows] + [""]

    body = [f"<h1>{html.escape(main.label)}</h1>",
            f"<p>Outcome <code>{html.escape(o)}</code> ({html.escape(main.comparison)}).</p>",
            "<ul>" + "".join(f"<li><b>{html.escape(k)}:</b> {html.escape(str(v))}</li>"
                             for k, v in facts) + "</ul>",
            "<h2>For the discussion section</h2>",
            f"<blockquote>{html.escape(' '.join(sentences))}</blockquote>",
            "<h2>Sensitivity to the prior</h2>", html_table(sens_h, sens_b),
            *(f"<p>{html.escape(line)}</p>" for line in conflict_lines(rows))]
    if isinstance(bma, str):
        body += [f"<h2>{bma_title}</h2>", f"<p>Not computed: {html.escape(bma)}</p>"]
    elif bma is not None:
        body += [f"<h2>{bma_title}</h2>",
                 f"<blockquote>{html.escape(bma_sentence(bma))}</blockquote>",
                 html_table(*bma_table(bma)),
                 f"<p>Exact marginal likelihoods (quadrature) "
                 f"{html.escape(bma_likelihood(bma))}.</p>"]
    body += mod_html
    if st_h:
        body += ["<h2>Studies</h2>", html_table(st_h, st_b)]
    body += trial_html
    body += ["<h2>Figures</h2>"] + [img_tag(png, name) for name, png in pngs.items()]
    body += ["<h2>Provenance and limits</h2>", f"<p>{html.escape(provenance)}</p>",
             "<ul>" + "".join(f"<li class=\"note\">{html.escape(n)}</li>" for n in notes)
             + "</ul>", "<h2>Priors</h2>",
             "<ul>" + "".join(f"<li><b>{html.escape(r.prior.name)}</b> "
                              f"({html.escape(prior_used(r))}): "
                              f"{html.escape(r.prior.source)}</li>" for r in rows) + "</ul>"]
    files: dict[str, bytes | str] = {**pngs, **mod_pngs}
    files[f"{o}.md"] = "\n".join(md)
    files[f"{o}.html"] = html_page(main.label, "\n".join(body))
    extra = {}
    if moderator is not None:
        extra["moderators"] = ({"not_analysed": moderator} if isinstance(moderator, str)
                               else moderator)
    files[f"{o}.json"] = json_text({"main": main.to_dict(), "priors": [r.to_dict() for r in rows],
                                    **({"bma": {"not_computed": bma} if isinstance(bma, str)
                                        else bma.to_dict()} if bma is not None else {}),
                                    **extra})
    return files


# the CSV is for analysis: one value per column, numbers as numbers (empty when not defined)
SOF_CSV_COLUMNS = ["outcome", "label", "measure", "level", "k", "participants",
                   "published_estimate", "published_ci_low", "published_ci_high", "grade",
                   "classical_method", "classical_estimate", "classical_ci_low",
                   "classical_ci_high", "prior", "bayes_median", "bayes_ci_low", "bayes_ci_high",
                   "tau_median", "prediction_low", "prediction_high", "p_benefit", "p_harm",
                   "p_benefit_new_study", "p_benefit_min", "p_benefit_min_prior",
                   "p_benefit_max", "p_benefit_max_prior", "conflicting_priors",
                   "shares_studies_with", "likelihood", "normal_normal_median",
                   "normal_normal_ci_low", "normal_normal_ci_high"]


def shared_studies(all_fits: dict[str, list]) -> dict[str, list[str]]:
    """Outcomes whose fits pool some of the same studies (not independent evidence)."""
    names = {o: {s.study for s in fits[0].studies} for o, fits in all_fits.items()}
    return {o: [p for p in all_fits if p != o and names[o] & names[p]] for o in all_fits}


def shared_groups(all_fits: dict[str, list]) -> list[tuple[list[str], list[str]]]:
    """Groups of outcomes linked by shared studies (connected components), each with the
    studies its outcomes share."""
    names = {o: {s.study for s in fits[0].studies} for o, fits in all_fits.items()}
    links = shared_studies(all_fits)
    seen, groups = set(), []
    for o in all_fits:
        if o in seen or not links[o]:
            continue
        group, todo = [], [o]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            group.append(x)
            todo += links[x]
        group = [g for g in all_fits if g in group]
        common = sorted({s for g in group for h in group if h != g for s in names[g] & names[h]})
        groups.append((group, common))
    return groups


def not_independent_text(all_fits: dict[str, list]) -> str:
    """One sentence per group of outcomes that rest on the same trials."""
    parts = []
    for group, common in shared_groups(all_fits):
        parts.append(f"{', '.join(group)} rest on the same trials ({', '.join(common)})")
    if not parts:
        return ""
    return ("Not independent: " + "; ".join(parts) + ". Their results share trials and "
            "participants and must not be counted as separate evidence.")


def trials_of(trials, studies: list[str] | None, comparison: str | None):
    """The trials.csv rows of the given studies (multi-arm row names map to their trial), or,
    without study names, those whose review_comparisons name the comparison."""
    if studies is not None:
        names = {t for x in studies for t in trial_names(str(x))}
        return trials[trials["study"].isin(names)]
    if comparison and "review_comparisons" in trials.columns:
        keep = [comparison in [c.strip() for c in str(v).split(";")]
                for v in trials["review_comparisons"]]
        return trials[keep]
    return trials


def characteristics_table(trials, studies: list[str] | None = None, comparison: str | None = None):
    """Characteristics of included studies from trials.csv (the columns present, in a fixed
    order), restricted to ``studies`` (or the comparison's trials); None without trials.csv."""
    if trials is None or trials.empty:
        return None
    wanted = [c for c in ("study", "design", "randomised_n", "population", "intervention",
                          "comparator", "country", "timepoints", "multi_arm",
                          "cluster_randomised") if c in trials.columns]
    rows = trials_of(trials, studies, comparison)
    if rows.empty:
        return None
    head = [c.replace("_", " ") for c in wanted]
    body = [[str(r[c]) for c in wanted] for _, r in rows.iterrows()]
    return head, body


def risk_of_bias_table(trials, studies: list[str] | None = None, comparison: str | None = None):
    """Risk-of-bias judgements (trials.csv columns rob_<domain>: low, high or unclear), domains
    as columns; None when the data hold no judgements."""
    if trials is None or trials.empty:
        return None
    domains = [c for c in trials.columns if c.startswith("rob_")]
    if not domains:
        return None
    rows = trials_of(trials, studies, comparison)
    head = ["study"] + [d[4:].replace("_", " ") for d in domains]
    body = [[str(r["study"])] + [str(r[d]) or "not given" for d in domains]
            for _, r in rows.iterrows()]
    return head, body


def trial_sections(trials, studies, comparison=None):
    """Markdown lines and HTML fragments: characteristics of included studies and risk of bias."""
    md, body = [], []
    ch = characteristics_table(trials, studies, comparison)
    if ch:
        scope = ("" if studies is not None else
                 f" (the trials of this comparison; the data do not say which of them the "
                 f"published result pooled)" if comparison else " (every trial in the data)")
        md += [f"## Characteristics of included studies{md_escape(scope)}", "", md_table(*ch),
               ""]
        body += [f"<h2>Characteristics of included studies{html.escape(scope)}</h2>",
                 html_table(*ch)]
    if trials is not None and not trials.empty:
        rob = risk_of_bias_table(trials, studies, comparison)
        md += ["## Risk of bias", ""]
        body += ["<h2>Risk of bias</h2>"]
        if rob:
            md += [md_table(*rob), ""]
            body += [html_table(*rob)]
        else:
            line = ("No risk-of-bias judgements in the data (trials.csv has no rob_<domain> "
                    "columns); they are not assumed.")
            md += [line, ""]
            body += [f"<p class=\"note\">{html.escape(line)}</p>"]
    return md, body


def sof_csv_rows(all_fits: dict[str, list]) -> list[dict]:
    """The numeric summary-of-findings rows (CSV), straight from the fit records."""
    shared = shared_studies(all_fits)
    out = []
    for outcome_id, fits in all_fits.items():
        main = fits[0]
        low = min(fits, key=lambda f: f.p_benefit)
        high = max(fits, key=lambda f: f.p_benefit)
        p, d = main.published, main.dl
        out.append({
            "outcome": outcome_id, "label": main.label, "measure": main.measure,
            "level": main.level, "k": main.k, "participants": main.participants,
            "published_estimate": p.estimate if p else "",
            "published_ci_low": p.ci_low if p else "", "published_ci_high": p.ci_high if p else "",
            "grade": (p.grade if p else "") or "",
            "classical_method": d.method if d else "", "classical_estimate": d.estimate if d else "",
            "classical_ci_low": d.ci_low if d else "", "classical_ci_high": d.ci_high if d else "",
            "prior": main.prior.name, "bayes_median": main.effect.median,
            "bayes_ci_low": main.effect.ci_low, "bayes_ci_high": main.effect.ci_high,
            "tau_median": main.tau.median if main.tau else "",
            "prediction_low": main.prediction.ci_low if main.prediction else "",
            "prediction_high": main.prediction.ci_high if main.prediction else "",
            "p_benefit": main.p_benefit, "p_harm": main.p_harm,
            "p_benefit_new_study": ("" if main.p_benefit_new_study is None
                                    else main.p_benefit_new_study),
            "p_benefit_min": low.p_benefit, "p_benefit_min_prior": low.prior.name,
            "p_benefit_max": high.p_benefit, "p_benefit_max_prior": high.prior.name,
            "conflicting_priors": " ".join(f.prior.name for f in fits if f.prior_data_conflict
                                           and f.prior_data_conflict.flagged),
            "shares_studies_with": " ".join(shared[outcome_id]),
            **likelihood_columns(main),
        })
    return out


def likelihood_columns(main) -> dict:
    """The headline's likelihood and, on sparse arm counts, the normal-normal result beside it."""
    c = main.likelihood_choice
    binomial = main.baseline_prior is not None
    nn = c.normal_normal if c else None
    return {"likelihood": "binomial-normal" if binomial else "normal-normal",
            "normal_normal_median": nn.median if nn else "",
            "normal_normal_ci_low": nn.ci_low if nn else "",
            "normal_normal_ci_high": nn.ci_high if nn else ""}


def sof_rows(all_fits: dict[str, list]) -> list[dict]:
    """One summary-of-findings row per outcome (numbers straight from the fit records)."""
    out = []
    for outcome_id, fits in all_fits.items():
        main = fits[0]
        low = min(fits, key=lambda f: f.p_benefit)
        high = max(fits, key=lambda f: f.p_benefit)
        out.append({
            "outcome": outcome_id, "label": main.label, "measure": main.measure,
            "level": main.level, "k": main.k, "participants": main.participants,
            "published": published_text(main.published),
            "grade": (main.published.grade if main.published else "") or "-",
            "dl": dl_text_short(main.dl),
            "bayes_prior": main.prior.name,
            "bayes": interval_text(main.effect) + (
                f" (binomial-normal; normal-normal "
                f"{interval_text(main.likelihood_choice.normal_normal)})"
                if main.likelihood_choice else ""),
            "p_benefit": prob_text(main.p_benefit, main.probability_draws),
            "p_benefit_min": prob_text(low.p_benefit, low.probability_draws),
            "p_benefit_max": prob_text(high.p_benefit, high.probability_draws),
            "prediction": ("-" if not main.prediction else
                           f"[{num(main.prediction.ci_low)}, "
                           f"{num(main.prediction.ci_high)}]"),
        })
    return out


SOF_HEADER = ["Outcome", "Measure", "Level", "k", "N", "Published [95% CI]", "GRADE",
              "Classical [95% CI]", "Prior", "Bayesian median [95% CrI]", "P(benefit)",
              "P(benefit) across priors", "95% prediction interval"]


def sof_table_rows(rows: list[dict]) -> list[list[str]]:
    return [[r["label"], r["measure"], r["level"], r["k"], r["participants"], r["published"],
             r["grade"], r["dl"], r["bayes_prior"], r["bayes"], r["p_benefit"],
             f"{r['p_benefit_min']} to {r['p_benefit_max']}", r["prediction"]] for r in rows]


def summary_of_findings(all_fits: dict[str, list], skipped: list[str], dataset_label: str,
                        provenance: str, trials=None) -> dict[str, str]:
    rows = sof_rows(all_fits)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SOF_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sof_csv_rows(all_fits))
    table = sof_table_rows(rows)
    shared = {o: others for o, others in shared_studies(all_fits).items() if others}
    title = "Summary of findings: Bayesian re-analysis"
    intro = (f"Data: {dataset_label}. One row per outcome with data; P(benefit) is the posterior "
             "probability that the pooled effect favours the intervention under the main prior; "
             "the range "
             "runs over every prior that applies (see each outcome's report).")
    sparse = [fits[0] for fits in all_fits.values() if fits[0].likelihood_choice]
    if sparse:
        intro += (" Rows marked binomial-normal have sparse arm counts ("
                  f"{sparse[0].likelihood_choice.rule}): their headline is the exact "
                  "binomial-normal model on the arm counts, with the normal-normal model on each "
                  "study's effect estimate under the same prior beside it.")
    links = [f"[{o}]({local_href(o + '.html')})" for o in all_fits]
    md = [f"# {title}", "", md_escape(intro), "", md_table(SOF_HEADER, table), "",
          "Reports: " + ", ".join(links), ""]
    not_independent = not_independent_text(all_fits) if shared else ""
    if not_independent:
        md += [md_escape(not_independent), ""]
    if skipped:
        md += [f"Outcomes without data (not analysed): {md_escape(', '.join(skipped))}.", ""]
    trial_md, trial_html = trial_sections(trials, None)
    md += trial_md
    md += ["## Provenance and limits", "", md_escape(provenance), ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>",
            html_table(SOF_HEADER, table),
            "<p>Reports: " + ", ".join(f"<a href=\"{html.escape(local_href(o + '.html'))}\">"
                                       f"{html.escape(o)}</a>" for o in all_fits) + "</p>"]
    if not_independent:
        body.append(f"<p class=\"note\">{html.escape(not_independent)}</p>")
    if skipped:
        body.append(f"<p class=\"note\">Outcomes without data (not analysed): "
                    f"{html.escape(', '.join(skipped))}.</p>")
    body += trial_html
    body += ["<h2>Provenance and limits</h2>", f"<p>{html.escape(provenance)}</p>"]
    return {"summary_of_findings.csv": buf.getvalue(),
            "summary_of_findings.md": "\n".join(md),
            "summary_of_findings.html": html_page(title, "\n".join(body), wide=True)}


def local_href(name: str) -> str:
    """A relative link to a file beside this one: percent-encoded, never a scheme or a path."""
    return "./" + urllib.parse.quote(name, safe="")


def inside(stage: Path, name: str) -> Path:
    """``stage / name``, refusing any name that would leave the staging directory."""
    target = (stage / name).resolve()
    if Path(name).is_absolute() or ".." in Path(name).parts or not target.is_relative_to(
            stage.resolve()):
        raise InputError(f"refusing to write {name!r}: it is not a file name inside the output "
                         "directory")
    return target


def write_report_files(out_dir: Path, files: dict[str, bytes | str]) -> list[Path]:
    """Stage every file, then move them into ``out_dir``: all of them or none."""
    with staged_directory(Path(out_dir)) as stage:
        for name, content in files.items():
            raw = content.encode("utf-8") if isinstance(content, str) else content
            target = inside(stage, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
    return [Path(out_dir) / name for name in files]


def replace_directory(out_dir, files: dict[str, bytes | str]) -> list[Path]:
    """Write ``files`` as the whole content of ``out_dir``: staged in a sibling directory, then
    swapped in (a previous content is removed only once the new one is in place)."""
    target = check_output_dir(out_dir)
    here = Path.cwd().resolve()
    if target.resolve() == here or target.resolve() in here.parents:
        raise InputError("is the current directory or one above it; it would be replaced as a "
                         "whole: give a new directory", file=str(out_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.bayes_pip-stage-", dir=target.parent))
    backup = None
    try:
        with write_errors_are_input_errors(target):
            for name, content in files.items():
                raw = content.encode("utf-8") if isinstance(content, str) else content
                inside(stage, name).write_bytes(raw)
        with signals_deferred(target):
            if target.exists():
                backup = target.parent / f".{target.name}.bayes_pip-old-{os.getpid()}"
                os.rename(target, backup)
            os.rename(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    return [target / name for name in files]
