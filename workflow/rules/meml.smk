# MEML-GRPO (RIEL): every method of meml.methods is one row of Table 5 (MEML-GRPO[-Expert<k>][-noHSFT][-noIML]).
# One job per (family, dataset, seed, sweep point) trains that point's methods in one process (finished runs are
# kept, an interrupted one resumes from its checkpoint in results/rl_work).
if MEML_METHODS:

    rule riel:
        input:
            lambda wc: dataset_inputs(wc.dataset),
            starts=sft_manifest("{family}", "{dataset}"),
        output:
            meml_manifest("{family}", "{dataset}", "{meml_group}", "{seed}"),  # beside the runs: a rerun keeps them
        params:
            digest=digest(lambda wc: [reads.rl_reads(SETTINGS, wc.dataset, m, int(wc.seed))
                                      for m in MEML_GROUPS[wc.meml_group]]),
            methods=lambda wc: " ".join(MEML_GROUPS[wc.meml_group]),
        threads: THREADS
        resources:
            **TRAIN_RESOURCES,
        log:
            f"{RESULTS}/logs/riel/{{family}}/{{dataset}}/{{meml_group}}.seed{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/riel/{{family}}/{{dataset}}/{{meml_group}}.seed{{seed}}.tsv",
        shell:
            "{MEML_TRAIN} riel {CFG} --family {wildcards.family} --dataset {wildcards.dataset} --seed {wildcards.seed} "
            "--methods {params.methods} > {log} 2>&1"


    # Every MEML-GRPO method of one (family, dataset, seed) under its inference expert prompts.
    rule evaluate_meml:
        input:
            lambda wc: dataset_inputs(wc.dataset),
            runs=lambda wc: meml_manifests(wc.family, wc.dataset, wc.seed),
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
