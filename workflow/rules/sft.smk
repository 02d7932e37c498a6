rule sft:
    input:
        base=lambda wc: base_model_input(wc.family),
        experts=[str(paths.experts_file(RESULTS, "{dataset}", e)) for e in range(N_EXPERTS)],
    output:
        sft_manifest("{family}", "{dataset}", "{seed}"),  # the run folders are not outputs: a rerun keeps finished runs
    params:
        digest=digest(lambda wc: [reads.sft_reads(SETTINGS, wc.family, wc.dataset, m, int(wc.seed)) for m in METHODS]),
    threads: THREADS
    resources:
        **TRAIN_RESOURCES,
    log:
        f"{RESULTS}/logs/sft/{{family}}/{{dataset}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sft/{{family}}/{{dataset}}/seed{{seed}}.tsv",
    shell:
        "{MEML_TRAIN} sft {CFG} --family {wildcards.family} --dataset {wildcards.dataset} --seed {wildcards.seed} > {log} 2>&1"
