# Error-complementarity analysis: every compared expert's ExpertK-SFT model sampled several times per
# test item (rule sample, once per family and dataset: the SFT models are shared by every seed), then the experts'
# error overlap (rule complementarity). Uses common.smk.
COMPLEMENTARITY_EXPERTS = SETTINGS.complementarity_experts()


def sampled_outputs(family, dataset):
    """The sampled files (rows and summary) of every compared expert of one (family, dataset)."""
    return [str(paths.sampled_file(RESULTS, family, dataset, f"Expert{k}-SFT", SETTINGS.sft.seed, k, summary=s))
            for k in COMPLEMENTARITY_EXPERTS for s in (False, True)]


def complementarity_outputs():
    """The complementarity table files, for the `all` rule (none when no expert can be compared)."""
    if not COMPLEMENTARITY_EXPERTS:
        return []
    return [f"{RESULTS}/tables/complementarity.{ext}" for ext in ("md", "csv", "tex")]


if COMPLEMENTARITY_EXPERTS:

    rule sample:
        input:
            lambda wc: dataset_inputs(wc.dataset),
            models=sft_manifest("{family}", "{dataset}"),
        output:
            sampled_outputs("{family}", "{dataset}"),
        params:
            digest=digest(lambda wc: reads.sample_reads(SETTINGS, wc.dataset)),
        threads: THREADS
        resources:
            **EVAL_RESOURCES,
        log:
            f"{RESULTS}/logs/sample/{{family}}/{{dataset}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/sample/{{family}}/{{dataset}}.tsv",
        shell:
            "{MEML} sample {CFG} --family {wildcards.family} --dataset {wildcards.dataset} > {log} 2>&1"

    localrules:
        complementarity,

    rule complementarity:
        input:
            [f for fam in FAMILIES for d in DATASETS for f in sampled_outputs(fam, d)],
        output:
            [report(f, caption="../report/complementarity.rst", category="Tables") if f.endswith(".md") else f
             for f in complementarity_outputs()],
        log:
            f"{RESULTS}/logs/complementarity.log",
        benchmark:
            f"{RESULTS}/benchmarks/complementarity.tsv",
        shell:
            "{MEML} complementarity {CFG} > {log} 2>&1"
