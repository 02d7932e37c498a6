# MEML-GRPO reproduction workflow. `snakemake --cores all` runs the embedded tiny offline setting;
# `--configfile workflow/config/<other>.yaml` runs another. No logic lives here: every rule calls
# one `meml` subcommand; paths come from meml.paths, settings from meml/pipeline/settings.py, and each
# rule's `params: digest` from meml/pipeline/reads.py (a job reruns when what it reads changes).
import sys

from snakemake.utils import min_version

from meml.pipeline.settings import normalize_command_line, settings_from_config, write_resolved_config

min_version("9.0")


configfile: "workflow/config/default.yaml"


report: "workflow/report/workflow.rst"


SETTINGS = settings_from_config(normalize_command_line(config), "workflow config")  # the one settings tree
RESULTS = SETTINGS.results_dir
CONFIG = f"{RESULTS}/config.yaml"  # what every job reads: written when the jobs start, never by a dry run
MEML = f'"{sys.executable}" -m meml'
COMPUTE = SETTINGS.compute
MEML_TRAIN = COMPUTE.launch_command(sys.executable)  # python -m meml, or accelerate launch (multi-GPU)
TRAIN_RESOURCES = dict(gpu=COMPUTE.gpus_per_job, mem_mb=COMPUTE.mem_mb_per_job, runtime=COMPUTE.runtime_min_per_job)
EVAL_RESOURCES = dict(gpu=COMPUTE.gpus_per_eval_job, mem_mb=COMPUTE.mem_mb_per_job,
                      runtime=COMPUTE.runtime_min_per_eval_job)
CFG = f"--config {CONFIG}"


onstart:
    write_resolved_config(SETTINGS, CONFIG)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/world_check.smk"
include: "workflow/rules/rl.smk"
include: "workflow/rules/meml.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/complementarity.smk"
include: "workflow/rules/reports.smk"


# Cheap rules run where snakemake runs, never as cluster jobs (workflow/profiles/slurm).
localrules:
    all,
    table4,
    figure2,
    sparsity,


rule all:
    input:
        final_outputs(),
