rule make_world:
    output:
        world_files(),
    params:
        digest=reads.digest(reads.world_reads(SETTINGS)),
    log:
        f"{RESULTS}/logs/make_world.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_world.tsv",
    shell:
        "{MEML} make-world {CFG} > {log} 2>&1"


# Teacher-LLM experts (experts.sources of kind openai or local): one job per (dataset, expert) asks the
# teacher every training question; answers are cached as they arrive, so a killed job resumes.
if TEACHER_EXPERTS:

    def _teacher_resources(wc):
        return teacher_resources(SETTINGS.experts.sources[int(wc.expert)], COMPUTE)

    rule teacher:
        input:
            lambda wc: dataset_inputs(wc.dataset),
        output:
            str(paths.teacher_summary_file(RESULTS, "{dataset}", "{expert}")),  # the cache beside it survives failures
        params:
            digest=digest(lambda wc: reads.teacher_reads(SETTINGS, wc.dataset, int(wc.expert))),
        resources:
            # an API teacher only waits on the network; a local teacher model is a GPU job of its `gpus`
            gpu=lambda wc: _teacher_resources(wc)["gpu"],
            mem_mb=lambda wc: _teacher_resources(wc)["mem_mb"],
            cpus_per_task=lambda wc: _teacher_resources(wc)["cpus_per_task"],
            runtime=COMPUTE.runtime_min_per_job,
        log:
            f"{RESULTS}/logs/teacher/{{dataset}}/expert{{expert}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/teacher/{{dataset}}/expert{{expert}}.tsv",
        shell:
            "{MEML} teacher {CFG} --dataset {wildcards.dataset} --expert {wildcards.expert} > {log} 2>&1"


rule experts:
    input:
        lambda wc: dataset_inputs(wc.dataset),
        teachers=lambda wc: [str(paths.teacher_summary_file(RESULTS, wc.dataset, e)) for e in TEACHER_EXPERTS],
    output:
        [str(paths.experts_file(RESULTS, "{dataset}", e)) for e in range(N_EXPERTS)],
    params:
        digest=digest(lambda wc: reads.experts_reads(SETTINGS, wc.dataset)),
    log:
        f"{RESULTS}/logs/experts/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/experts/{{dataset}}.tsv",
    shell:
        "{MEML} experts {CFG} --dataset {wildcards.dataset} > {log} 2>&1"
