rule make_world:
    output:
        world_files(),
    params:
        digest=config_digest(config["world"], SYNTH_TASKS),
    log:
        f"{RESULTS}/logs/make_world.log",
    shell:
        "{MEML} make-world 2> {log}"


rule experts:
    input:
        lambda wc: dataset_inputs(wc.dataset),
    output:
        [str(paths.experts_file(RESULTS, "{dataset}", e)) for e in range(N_EXPERTS)],
    params:
        digest=config_digest(config["experts"], config["data"]),
    log:
        f"{RESULTS}/logs/experts/{{dataset}}.log",
    shell:
        "{MEML} experts --dataset {wildcards.dataset} 2> {log}"
