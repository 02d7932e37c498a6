rule evaluate:
    input:
        lambda wc: dataset_inputs(wc.dataset),
        models=sft_manifest("{family}", "{dataset}", "{seed}"),
    output:
        eval_outputs("{family}", "{dataset}", "{seed}"),
    params:
        digest=digest(lambda wc: reads.eval_reads(SETTINGS, wc.dataset, METHODS)),
    threads: THREADS
    resources:
        **EVAL_RESOURCES,
    log:
        f"{RESULTS}/logs/evaluate/{{family}}/{{dataset}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{family}}/{{dataset}}/seed{{seed}}.tsv",
    shell:
        "{MEML} evaluate {CFG} --family {wildcards.family} --dataset {wildcards.dataset} --seed {wildcards.seed} > {log} 2>&1"
