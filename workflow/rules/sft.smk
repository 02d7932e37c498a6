rule sft:
    input:
        base=lambda wc: base_model_input(wc.family),
        experts=[str(paths.experts_file(RESULTS, "{dataset}", e)) for e in range(N_EXPERTS)],
    output:
        sft_outputs("{family}", "{dataset}", "{seed}"),
    params:
        digest=config_digest(config["sft"], config["experts"]["prompts"]),
    threads: config["threads_per_job"]
    resources:
        **TRAIN_RESOURCES,
    log:
        f"{RESULTS}/logs/sft/{{family}}/{{dataset}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sft/{{family}}/{{dataset}}/seed{{seed}}.tsv",
    shell:
        "{MEML_TRAIN} sft {CFG} --family {wildcards.family} --dataset {wildcards.dataset} --seed {wildcards.seed} > {log} 2>&1"
