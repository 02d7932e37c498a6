rule make_world:
    output:
        world_files(),
    params:
        digest=config_digest(config["world"], SYNTH_TASKS),
    log:
        f"{RESULTS}/logs/make_world.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_world.tsv",
    shell:
        "{MEML} make-world {CFG} > {log} 2>&1"


rule experts:
    input:
        lambda wc: dataset_inputs(wc.dataset),
    output:
        [str(paths.experts_file(RESULTS, "{dataset}", e)) for e in range(N_EXPERTS)],
    params:
        digest=config_digest(config["experts"], config["data"]),
    log:
        f"{RESULTS}/logs/experts/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/experts/{{dataset}}.tsv",
    shell:
        "{MEML} experts {CFG} --dataset {wildcards.dataset} > {log} 2>&1"
