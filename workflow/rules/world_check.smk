# The world check (issue 16): after SFT, every SFT model of a synthetic dataset answers the dev split under every
# expert prompt (greedy and pass@k, per slice), then one table with the world's acceptance lines. Its jobs are
# scheduled ahead of the RL jobs (priority), not made their input: an evaluation-only change reruns the check
# without retraining anything. Uses common.smk.
WORLD_CHECK_DATASETS = SETTINGS.synthetic_datasets


def world_check_file(family, dataset):
    return str(paths.world_check_file(RESULTS, family, dataset))


def world_check_outputs():
    if not WORLD_CHECK_DATASETS:
        return []
    return [f"{RESULTS}/tables/world_check.{ext}" for ext in ("md", "csv")]


if WORLD_CHECK_DATASETS:

    localrules:
        world_check_table,

    rule world_check:
        input:
            lambda wc: dataset_inputs(wc.dataset),
            models=sft_manifest("{family}", "{dataset}"),
        output:
            world_check_file("{family}", "{dataset}"),
        params:
            digest=digest(lambda wc: reads.world_check_reads(SETTINGS, wc.dataset)),
        threads: THREADS
        priority: 10  # ahead of the RL jobs that become ready with it
        resources:
            **EVAL_RESOURCES,
        log:
            f"{RESULTS}/logs/world_check/{{family}}/{{dataset}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/world_check/{{family}}/{{dataset}}.tsv",
        shell:
            "{MEML} world-check {CFG} --family {wildcards.family} --dataset {wildcards.dataset} > {log} 2>&1"

    rule world_check_table:
        input:
            [world_check_file(f, d) for f in FAMILIES for d in WORLD_CHECK_DATASETS],
        output:
            [report(f, caption="../report/world_check.rst", category="Tables") if f.endswith(".md") else f
             for f in world_check_outputs()],
        log:
            f"{RESULTS}/logs/world_check_table.log",
        shell:
            "{MEML} world-check-table {CFG} > {log} 2>&1"
