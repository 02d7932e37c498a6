# RL from the SFT starts: one job per (family, dataset, seed, algorithm) trains that algorithm's
# methods (rl.methods) in one process; runs checkpoint into results/rl_work and resume there.
rule rl:
    input:
        lambda wc: dataset_inputs(wc.dataset),
        starts=sft_manifest("{family}", "{dataset}"),
    output:
        rl_manifest("{family}", "{dataset}", "{algorithm}", "{seed}"),
    params:
        digest=digest(lambda wc: [reads.rl_reads(SETTINGS, wc.dataset, m, int(wc.seed))
                                  for m in rl_methods_of(wc.algorithm)]),
    threads: THREADS
    resources:
        **TRAIN_RESOURCES,
    log:
        f"{RESULTS}/logs/rl/{{family}}/{{dataset}}/{{algorithm}}.seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/rl/{{family}}/{{dataset}}/{{algorithm}}.seed{{seed}}.tsv",
    shell:
        "{MEML_TRAIN} rl {CFG} --family {wildcards.family} --dataset {wildcards.dataset} --seed {wildcards.seed} "
        "--algorithm {wildcards.algorithm} > {log} 2>&1"


# One evaluation rule per algorithm (its methods fixed, so Snakemake can match their result files).
for _algorithm in RL_ALGORITHMS_USED:

    rule:
        name:
            f"evaluate_{_algorithm.replace('.', '')}"
        input:
            lambda wc: dataset_inputs(wc.dataset),
            manifest=rl_manifest("{family}", "{dataset}", _algorithm, "{seed}"),
        output:
            rl_eval_outputs("{family}", "{dataset}", _algorithm, "{seed}"),
        params:
            digest=digest(lambda wc, _a=_algorithm: reads.eval_reads(SETTINGS, wc.dataset, rl_methods_of(_a))),
            methods=" ".join(rl_methods_of(_algorithm)),
        threads: THREADS
        resources:
            **EVAL_RESOURCES,
        log:
            f"{RESULTS}/logs/evaluate/{{family}}/{{dataset}}/{_algorithm}.seed{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/evaluate_rl/{{family}}/{{dataset}}/{_algorithm}.seed{{seed}}.tsv"
        shell:
            "{MEML} evaluate {CFG} --family {wildcards.family} --dataset {wildcards.dataset} "
            "--seed {wildcards.seed} --methods {params.methods} > {log} 2>&1"
