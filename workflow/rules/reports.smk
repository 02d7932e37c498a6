# Tables and figures from the raw result files. Each output has its own rule, so deleting one file and
# rerunning rebuilds only it; `meml reports` rebuilds them all from existing results in seconds.
# report(): the file goes into `snakemake --report results/report.html` with its caption.


def table_outputs(name, caption):
    """A table's Markdown (in the HTML report, with its caption), CSV and LaTeX files."""
    return [report(f"{RESULTS}/tables/{name}.md", caption=f"../report/{caption}", category="Tables"),
            f"{RESULTS}/tables/{name}.csv", f"{RESULTS}/tables/{name}.tex", f"{RESULTS}/tables/{name}_runs.csv"]


rule table4:
    input:
        all_eval_outputs(),
    output:
        table_outputs("table4", "table4.rst"),
    log:
        f"{RESULTS}/logs/table4.log",
    benchmark:
        f"{RESULTS}/benchmarks/table4.tsv",
    shell:
        "{MEML} table4 {CFG} > {log} 2>&1"


if MEML_METHODS and not SWEEP:

    localrules:
        table5,

    rule table5:
        input:
            [f for fam in FAMILIES for d in DATASETS for s in SEEDS for f in meml_eval_outputs(fam, d, s)],
        output:
            table_outputs("table5", "table5.rst"),
        log:
            f"{RESULTS}/logs/table5.log",
        shell:
            "{MEML} table5 {CFG} > {log} 2>&1"


if TABLE6_METHODS and not SWEEP:

    localrules:
        table6,

    rule table6:
        input:
            all_eval_outputs(),
        output:
            table_outputs("table6", "table6.rst"),
        log:
            f"{RESULTS}/logs/table6.log",
        shell:
            "{MEML} table6 {CFG} > {log} 2>&1"


def rl_runs():
    """Every RL and MEML-GRPO run marker (their metrics.jsonl files feed the figures)."""
    out = [rl_manifest(f, d, a, s) for f in FAMILIES for d in DATASETS for s in SEEDS for a in RL_ALGORITHMS_USED]
    return out + [m for f in FAMILIES for d in DATASETS for s in SEEDS for m in meml_manifests(f, d, s)]


rule figure2:
    input:
        rl_runs(),
    output:
        report(f"{RESULTS}/figures/figure2.png", caption="../report/figure2.rst", category="Figures"),
        f"{RESULTS}/figures/figure2.pdf",
        [f"{RESULTS}/figures/figure2_{f}.{ext}" for f in FAMILIES for ext in ("png", "pdf")],
    log:
        f"{RESULTS}/logs/figure2.log",
    shell:
        "{MEML} figures {CFG} --only figure2 > {log} 2>&1"


rule sparsity:
    input:
        rl_runs(),
    output:
        report(f"{RESULTS}/figures/sparsity.png", caption="../report/sparsity.rst", category="Figures"),
        f"{RESULTS}/figures/sparsity.pdf",
    log:
        f"{RESULTS}/logs/sparsity.log",
    shell:
        "{MEML} figures {CFG} --only sparsity > {log} 2>&1"


def claims_outputs():
    """The claims table (Markdown, in the HTML report's Claims section, and CSV); none in a sweep."""
    return [] if SWEEP else [f"{RESULTS}/tables/claims.{ext}" for ext in ("md", "csv")]


if not SWEEP:

    localrules:
        claims,

    rule claims:
        input:
            all_eval_outputs(),
            rl_runs(),
        output:
            [report(f, caption="../report/claims.rst", category="Claims") if f.endswith(".md") else f
             for f in claims_outputs()],
        log:
            f"{RESULTS}/logs/claims.log",
        shell:
            "{MEML} reports {CFG} --only claims > {log} 2>&1"


def sweep_outputs():
    """The sweep table and, per swept option, its table and plot (none without a sweep)."""
    from meml.sweeps import output_files

    return [str(f) for f in output_files(SETTINGS)]


if SWEEP:

    localrules:
        sweeps,

    rule sweeps:
        input:
            all_eval_outputs(),
        output:
            [report(f, caption="../report/sweep.rst", category="Sweeps") if f.endswith((".png", ".md")) else f
             for f in sweep_outputs()],
        log:
            f"{RESULTS}/logs/sweeps.log",
        shell:
            "{MEML} sweeps {CFG} > {log} 2>&1"


def final_outputs():
    """What `snakemake` builds: the paper's tables and figures, or a sweep's tables and plots."""
    if SWEEP:
        return sweep_outputs()
    out = [f"{RESULTS}/tables/table4.{ext}" for ext in ("md", "csv", "tex")]
    if MEML_METHODS:
        out += [f"{RESULTS}/tables/table5.{ext}" for ext in ("md", "csv", "tex")]
    if TABLE6_METHODS:
        out += [f"{RESULTS}/tables/table6.{ext}" for ext in ("md", "csv", "tex")]
    out += complementarity_outputs()
    out += world_check_outputs()
    out += [f"{RESULTS}/figures/figure2.png", f"{RESULTS}/figures/sparsity.png"]
    out += claims_outputs()
    return out
