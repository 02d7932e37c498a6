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
