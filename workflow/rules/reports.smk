rule table4:
    input:
        [out for f in FAMILIES for d in DATASETS for s in SEEDS for out in eval_outputs(f, d, s)],
    output:
        f"{RESULTS}/tables/table4.md",
        f"{RESULTS}/tables/table4.csv",
    log:
        f"{RESULTS}/logs/table4.log",
    benchmark:
        f"{RESULTS}/benchmarks/table4.tsv",
    shell:
        "{MEML} table4 {CFG} > {log} 2>&1"
