# trajfusion: raw datasets -> pools -> teacher samples -> verification -> statistics ->
# fused datasets (TrajFusion variants + vanilla RFT) -> SFT -> evaluation -> report.
#
#   snakemake --cores 2                                   # embedded default (config/config.yaml)
#   snakemake --configfile config/paper.yaml --profile profiles/slurm   # the paper's matrix
#
import os

# Every setting a rule depends on reaches it through `params:` so that Snakemake reruns
# exactly the jobs a config change touches.

# The embedded default, unless --configfile names another (Snakemake would otherwise deep-merge
# the two, mixing the embedded default's models and variants into the paper's matrix).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "docs/report/workflow.rst"


include: "rules/common.smk"
include: "rules/functions.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/sample.smk"
include: "rules/verify.smk"
include: "rules/fuse.smk"
include: "rules/reflect.smk"
include: "rules/train.smk"
include: "rules/distill.smk"
include: "rules/grpo.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/export.smk"


rule all:
    default_target: True
    input:
        REPORT_OUTPUTS,
        # The RL runs' evaluations (rules/grpo.smk); the report does not read them yet.
        PLAN.rl_eval_paths,
