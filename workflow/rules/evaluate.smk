# The SFT methods of one (family, dataset) under their inference expert prompts: one evaluation every seed shares.
rule evaluate:
    input:
        lambda wc: dataset_inputs(wc.dataset),
        models=sft_manifest("{family}", "{dataset}"),
    output:
        eval_outputs("{family}", "{dataset}"),
    params:
        digest=digest(lambda wc: reads.eval_reads(SETTINGS, wc.dataset, METHODS)),
    threads: THREADS
    resources:
        **EVAL_RESOURCES,
    log:
        f"{RESULTS}/logs/evaluate/{{family}}/{{dataset}}/SFT.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{family}}/{{dataset}}.tsv",
    shell:
        "{MEML} evaluate {CFG} --family {wildcards.family} --dataset {wildcards.dataset} > {log} 2>&1"
