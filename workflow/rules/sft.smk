# SFT: one job per (family, dataset) with seed sft.seed; every seed of `seeds` starts its RL runs from these models
# (the seeds are RL replicates, as the pretrained base is shared).
rule sft:
    input:
        base=lambda wc: base_model_input(wc.family),
        experts=[str(paths.experts_file(RESULTS, "{dataset}", e)) for e in range(N_EXPERTS)],
    output:
        sft_manifest("{family}", "{dataset}"),  # the run folders are not outputs: a rerun keeps finished runs
    params:
        digest=digest(lambda wc: [reads.sft_reads(SETTINGS, wc.family, wc.dataset, m) for m in METHODS]),
    threads: THREADS
    resources:
        **TRAIN_RESOURCES,
    log:
        f"{RESULTS}/logs/sft/{{family}}/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sft/{{family}}/{{dataset}}.tsv",
    shell:
        "{MEML_TRAIN} sft {CFG} --family {wildcards.family} --dataset {wildcards.dataset} > {log} 2>&1"
