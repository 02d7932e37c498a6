# MEML-GRPO (RIEL): one job per (family, dataset, seed, method); every method of meml.methods is one
# row of Table 5 (MEML-GRPO[-Expert<k>][-noHSFT][-noIML]). Runs checkpoint into results/rl_work.
if MEML_METHODS:

    rule riel:
        input:
            lambda wc: dataset_inputs(wc.dataset),
            starts=sft_manifest("{family}", "{dataset}"),
        output:
            meml_run("{family}", "{dataset}", "{method}", "{seed}"),  # a manifest beside the run: a rerun keeps it
        params:
            digest=digest(lambda wc: reads.rl_reads(SETTINGS, wc.dataset, wc.method, int(wc.seed))),
        threads: THREADS
        resources:
            **TRAIN_RESOURCES,
        log:
            f"{RESULTS}/logs/riel/{{family}}/{{dataset}}/{{method}}.seed{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/riel/{{family}}/{{dataset}}/{{method}}.seed{{seed}}.tsv",
        shell:
            "{MEML_TRAIN} riel {CFG} --family {wildcards.family} --dataset {wildcards.dataset} --seed {wildcards.seed} "
            "--method {wildcards.method} > {log} 2>&1"


    # Every MEML-GRPO method of one (family, dataset, seed) under its inference expert prompts.
    rule evaluate_meml:
        input:
            lambda wc: dataset_inputs(wc.dataset),
            runs=lambda wc: [meml_run(wc.family, wc.dataset, m, wc.seed) for m in MEML_METHODS],
        output:
            meml_eval_outputs("{family}", "{dataset}", "{seed}"),
        params:
            digest=digest(lambda wc: reads.eval_reads(SETTINGS, wc.dataset, MEML_METHODS)),
            methods=" ".join(MEML_METHODS),
        threads: THREADS
        resources:
            **EVAL_RESOURCES,
        log:
            f"{RESULTS}/logs/evaluate/{{family}}/{{dataset}}/MEML.seed{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/evaluate_meml/{{family}}/{{dataset}}/seed{{seed}}.tsv"
        shell:
            "{MEML} evaluate {CFG} --family {wildcards.family} --dataset {wildcards.dataset} "
            "--seed {wildcards.seed} --methods {params.methods} > {log} 2>&1"
