"""The shape of the package, enforced: imports flow one way through the layers below, `list`,
`dl` and the exact engine never load PyMC, the CLI holds no statistics, and the DL core uses
NumPy/SciPy only."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_pip"

# lowest first; a module may import modules of its own layer or of lower layers only
LAYERS = [
    {"version", "errors", "formats", "direction", "payloads", "tables", "document", "output", "bundled", "environment", "effects", "record", "dl_fused", "dl",
     "metareg", "moderation_record"},
    {"measures", "reconstruct", "robustness", "cluster", "design"},
    {"data", "validate", "categorical_data"},
    {"prior_families"},
    {"priors"},
    {"engines.base", "engines.diagnostics", "engines.draws", "engines.idata",
     "engines.mixture", "engines.exact_kernels", "engines.tau_kernels", "engines.marginals",
     "engines.exact_batch_kernels", "engines.splines", "engines.thread_state"},
    {"engines.conjugate", "engines.exact", "engines.evidence", "engines.pymc_models", "engines.fast_normal",
     "engines.fast_multinomial",
     "engines.binomial_kernels", "engines.binomial_tables",
     "engines.mcmc", "engines"},
    {"engines.normal_nuts", "engines.nuts_regression", "engines.binomial_nuts", "engines.exact_batch", "engines.batch",
     "engines.normal_exact",
     "engines.exact_regression", "engines.exact_binomial", "engines.multinomial_nuts",
     "engines.binomial_evidence"},
    {"engines.binomial_engine"},
    {"classical"},
    {"moderator_data"},
    {"posterior_stats"},
    {"summarise", "listing"},
    {"evidence_text"},
    {"analysis", "figures", "moderation", "categorical", "figures_categorical", "certainty"},
    {"sweeps", "checks", "moderation_text", "database", "analyses"},
    {"pages", "bundle", "revman", "api", "calibration", "categorical_page", "certainty_page"},
    {"cli_common"},
    {"cli_commands", "cli_batch"},
    {"cli", "__init__"},
    {"__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    name = ".".join(parts)
    return name[: -len(".__init__")] if name.endswith(".__init__") and name != "__init__" else name


def package_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayes_pip"):
            if node.module == "bayes_pip":
                found |= {a.name for a in node.names}
            else:
                found.add(node.module.removeprefix("bayes_pip."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("bayes_pip.") for a in node.names
                      if a.name.startswith("bayes_pip.")}
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    assert set(MODULES) - {"__init__"} <= set(LAYER) | {"__init__"}, set(MODULES) - set(LAYER)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_flow_downstream(name):
    for dep in package_imports(MODULES[name]):
        assert dep in LAYER, f"{name} imports unknown module {dep}"
        assert LAYER[dep] <= LAYER[name], f"{name} (layer {LAYER[name]}) imports {dep} " \
                                          f"(layer {LAYER[dep]})"


def test_no_import_cycles():
    graph = {name: package_imports(path) & set(MODULES) for name, path in MODULES.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in graph.get(node, ()):
            if dep == node or dep == "__init__":
                continue
            assert state.get(dep) != "open", f"import cycle: {' -> '.join(stack + [dep])}"
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


def import_roots(path):
    tree = ast.parse(path.read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}
    return roots


def test_dl_core_uses_numpy_and_scipy_only():
    """The DL core: NumPy and SciPy, plus its own fused kernel (numba) for large batches."""
    assert import_roots(PACKAGE / "dl.py") <= {"numpy", "scipy", "__future__", "dataclasses",
                                                "math", "bayes_pip"}
    assert package_imports(PACKAGE / "dl.py") == {"dl_fused"}
    assert import_roots(PACKAGE / "dl_fused.py") <= {"numpy", "numba", "math", "__future__"}


@pytest.mark.parametrize("module", ["cli", "cli_common", "cli_commands", "cli_batch"])
def test_cli_holds_no_statistics(module):
    """The CLI parses, calls the library and prints: no numerical libraries, no arithmetic
    beyond counting."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    assert not roots & {"numpy", "scipy", "pandas", "math", "statistics", "pymc", "arviz"}
    ops = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp)
           and isinstance(n.op, (ast.Mult, ast.Div, ast.Pow, ast.FloorDiv))]
    assert all(isinstance(op.left, ast.Constant) and isinstance(op.left.value, str)
               for op in ops if isinstance(op.op, ast.Mult)), "arithmetic in cli.py"
    assert not [op for op in ops if not isinstance(op.op, ast.Mult)]


def modules_loaded(args, prefixes) -> list[str]:
    """The modules whose names start with one of ``prefixes`` that a fresh process has loaded
    after running the CLI with ``args`` (which must succeed)."""
    code = ("import sys, contextlib, io\nfrom bayes_pip.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main({args!r}) == 0\n"
            f"print([m for m in sys.modules if m.startswith({tuple(prefixes)!r})])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return ast.literal_eval(r.stdout.strip())


@pytest.mark.parametrize("args", [["list"], ["dl", "secure_attachment_post"],
                                  ["fit", "parent_reported_depression_vs_alternative",
                                   "--engine", "exact"],
                                  ["compare-priors", "secure_attachment_post", "--engine",
                                   "exact"]],
                         ids=["list", "dl", "fit-exact", "compare-exact"])
def test_light_commands_never_import_pymc(args):
    assert modules_loaded(args, ("pymc", "pytensor", "nutpie", "arviz", "numba")) == []


def test_exact_binomial_fit_imports_no_scipy_optimize():
    """`fit --engine binomial-exact` (the sparse binary outcomes' default) needs neither
    scipy.interpolate nor scipy.optimize, which cost its cold start about a quarter of a
    second: its splines and root search are the engine's own (tested equal to SciPy's)."""
    assert modules_loaded(["fit", "secure_attachment_post", "--engine", "binomial-exact"],
                          ("scipy.interpolate", "scipy.optimize")) == []


@pytest.mark.parametrize("args", [["list"], ["dl", "secure_attachment_post"],
                                  ["priors", "secure_attachment_post"]],
                         ids=["list", "dl", "priors"])
def test_commands_that_fit_nothing_import_no_engine(args):
    """Building the parser imports no engine (their --help is computed when printed), and
    SciPy's signal, interpolate and optimize modules load only where used: together 1.3 s of a
    cold `list` before."""
    assert modules_loaded(args, ("bayes_pip.engines.exact_binomial",
                                 "bayes_pip.engines.binomial_engine",
                                 "bayes_pip.engines.normal_exact",
                                 "bayes_pip.engines.multinomial", "scipy.signal",
                                 "scipy.interpolate", "scipy.optimize")) == []


def test_engine_help_is_printed_in_full():
    from bayes_pip import engines
    from bayes_pip.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    assert "binomial-exact for an RR or OR outcome" in text and "closed-form" in text
    assert all(engines.get(n).help.split()[0] in " ".join(text.split()) for n in engines.choices())


def test_engine_registry_describes_every_engine():
    from bayes_pip import engines

    for name in engines.REGISTRY:
        engine = engines.get(name)
        assert engine.name == name
        assert engine.help.startswith(name + ":")
        assert engine.model in ("normal-normal", "binomial-normal", "multinomial-normal")
        assert "numpy" in engine.packages


@pytest.mark.parametrize("name", ["pymc", "binomial", "binomial-exact", "exact", "conjugate",
                                  "multinomial"])
def test_every_engine_satisfies_the_protocol(name):
    """Each registered engine declares what it accepts and can do, consistently: calibration,
    batching and texts ask these attributes, never the engine's name."""
    from bayes_pip import engines, payloads
    from bayes_pip.engines.base import CAPABILITIES

    engine = engines.get(name)
    for attr in ("name", "model", "help", "stochastic", "packages", "accepts", "capabilities",
                 "fit", "describe"):
        assert hasattr(engine, attr), f"{name} has no {attr}"
    assert engine.accepts and all(k in payloads.PAYLOADS for k in engine.accepts)
    assert set(engine.capabilities) <= set(CAPABILITIES)
    assert engine.stochastic == ("stochastic" in engine.capabilities)
    assert ("batch" in engine.capabilities) == callable(getattr(engine, "fit_batch", None))
    if engine.stochastic:
        assert callable(getattr(engine, "settings_for", None))
        assert callable(getattr(engine, "draws", None))


def test_registry_offers_every_engine_but_the_summary_one():
    from bayes_pip import engines

    assert set(engines.choices()) == set(engines.REGISTRY) - {engines.SUMMARY_ENGINE}
    assert engines.selectable()[0] == engines.AUTO
