"""The CLI outputs pinned byte for byte (tests/test_golden.py); make_golden.py writes them.

Every bundled outcome with data x engine (exact, pymc, binomial where it applies) x level, plus
`dl --json`, `list --json` and `compare-priors --json` (exact engine), on the bundled PIP data and
the Crins 2014 example. The files were written before the reshape of the package and must not
change when code moves.
"""

PIP = None  # the bundled data (no --data)
CRINS = "crins2014"

FIT_CASES = []
for outcome in ("parental_depression_incidence", "parent_reported_depression",
                "secure_attachment_post", "avoidant_attachment_post",
                "disorganised_attachment_post", "insecure_to_secure_post",
                "parent_reported_depression_vs_alternative"):
    for engine in ("exact", "pymc"):
        FIT_CASES.append((PIP, outcome, engine, "auto", None))
    FIT_CASES.append((PIP, outcome, "exact", "auto", "sceptical"))
for outcome, engine in (("parent_reported_depression", "exact"),
                        ("parent_reported_depression", "pymc"),
                        ("secure_attachment_post", "exact"),
                        ("secure_attachment_post", "pymc"),
                        ("secure_attachment_post", "binomial")):
    FIT_CASES.append((PIP, outcome, engine, "study", None))
for engine in ("exact", "pymc", "binomial"):
    FIT_CASES.append((CRINS, "acute_rejection", engine, "auto", None))
FIT_CASES.append((CRINS, "acute_rejection", "exact", "auto", "turner"))

COMPARE_CASES = [(PIP, "secure_attachment_post", "auto"),
                 (PIP, "parent_reported_depression_vs_alternative", "auto"),
                 (CRINS, "acute_rejection", "auto")]
DL_CASES = [(PIP, "parent_reported_depression_vs_alternative"),
            (PIP, "secure_attachment_post"), (CRINS, "acute_rejection")]
LIST_CASES = [PIP, CRINS]


def name(*parts) -> str:
    return "__".join("pip" if p is None else str(p) for p in parts) + ".json"


def argv(kind: str, case, data_dir) -> list[str]:
    """The command line of a case; ``data_dir(name)`` maps a data set name to a directory."""
    if kind == "list":
        return ["list", "--json"] + ([] if case is None else ["--data", str(data_dir(case))])
    data = case[0]
    extra = [] if data is None else ["--data", str(data_dir(data))]
    if kind == "fit":
        _, outcome, engine, level, prior = case
        return (["fit", outcome, "--engine", engine, "--level", level, "--json"] + extra
                + ([] if prior is None else ["--prior", prior]))
    if kind == "compare":
        _, outcome, level = case
        return ["compare-priors", outcome, "--engine", "exact", "--level", level, "--json"] + extra
    if kind == "dl":
        # the study rows as pinned (dl pools at the level fit uses since; tests/test_cli.py)
        return ["dl", case[1], "--json", "--level", "study"] + extra
    raise ValueError(kind)


def all_cases():
    for c in FIT_CASES:
        yield "fit", c, name("fit", *c)
    for c in COMPARE_CASES:
        yield "compare", c, name("compare", *c)
    for c in DL_CASES:
        yield "dl", c, name("dl", *c)
    for c in LIST_CASES:
        yield "list", c, name("list", c)
