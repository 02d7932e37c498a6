rule table4:
    input:
        all_eval_outputs(),
    output:
        f"{RESULTS}/tables/table4.md",
        f"{RESULTS}/tables/table4.csv",
    log:
        f"{RESULTS}/logs/table4.log",
    benchmark:
        f"{RESULTS}/benchmarks/table4.tsv",
    shell:
        "{MEML} table4 {CFG} > {log} 2>&1"


if MEML_METHODS:

    rule table5:
        input:
            [f for fam in FAMILIES for d in DATASETS for s in SEEDS for f in meml_eval_outputs(fam, d, s)],
        output:
            f"{RESULTS}/tables/table5.md",
            f"{RESULTS}/tables/table5.csv",
        log:
            f"{RESULTS}/logs/table5.log",
        shell:
            "{MEML} table5 {CFG} > {log} 2>&1"


if TABLE6_METHODS:

    rule table6:
        input:
            all_eval_outputs(),
        output:
            f"{RESULTS}/tables/table6.md",
            f"{RESULTS}/tables/table6.csv",
        log:
            f"{RESULTS}/logs/table6.log",
        shell:
            "{MEML} table6 {CFG} > {log} 2>&1"
