rule build_tiny:
    input:
        world_files(),
    output:
        str(paths.init_model_dir(RESULTS, "{family}") / "config.json"),
    params:
        digest=digest(lambda wc: reads.tiny_reads(SETTINGS, wc.family)),
    threads: THREADS
    log:
        f"{RESULTS}/logs/build_tiny/{{family}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_tiny/{{family}}.tsv",
    shell:
        "{MEML} build-tiny {CFG} --family {wildcards.family} > {log} 2>&1"


rule pretrain:
    input:
        str(paths.init_model_dir(RESULTS, "{family}") / "config.json"),
    output:
        str(paths.base_model_dir(RESULTS, "{family}") / "run.json"),
    params:
        digest=digest(lambda wc: reads.pretrain_reads(SETTINGS, wc.family)),
    threads: THREADS
    log:
        f"{RESULTS}/logs/pretrain/{{family}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{family}}.tsv",
    shell:
        "{MEML} pretrain {CFG} --family {wildcards.family} > {log} 2>&1"
