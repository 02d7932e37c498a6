# The world check (issue 16): after SFT and before any RL, every SFT model of a synthetic dataset answers the dev
# split under every expert prompt (greedy and pass@k, per slice), then one table with the world's acceptance lines.
# The RL rules of a synthetic dataset wait for its check. Uses common.smk.
WORLD_CHECK_DATASETS = SETTINGS.synthetic_datasets


def world_check_file(family, dataset):
    return str(paths.world_check_file(RESULTS, family, dataset))


def world_check_before_rl(family, dataset):
    """The world check an RL job of (family, dataset) waits for (none for a real benchmark)."""
    return [world_check_file(family, dataset)] if dataset in WORLD_CHECK_DATASETS else []


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
