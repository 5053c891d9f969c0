"""``trajfusion report``: Tables 1-3, Figures 1, 3 and 4, metrics and significance tests.

Usage: ``trajfusion report --manifest MANIFEST.json --out-dir results/report
[--paper-results FILE] [--bootstrap-samples B] [--seed S] [--figure1-teacher T]
[--figure1-pool P] [--figure1-sources S1,S2]``.

Manifest (JSON, written by the Snakemake rule; paths relative to the working directory; schema:
``trajfusion.contracts.MANIFEST_SCHEMA``)::

    {
      "smoke_test": true,                  # required; true adds a caveat to every output
      "evals": [                           # required; one entry per verdict table
        {"experiment": "main",             # free text
         "tables": ["table1", "figure3"],  # membership: table1 table2 table3 figure3 figure4
         "backbone": "llama3-8b",          # name of the fine-tuned base model
         "variant": "tf",                  # fused-data variant the model was trained on
         "method": "trajfusion",           # "rft", "trajfusion"; "icl", "instruct": untrained baselines
         "pool": "15k",                    # training pool
         "data_size": "15k",               # "15k", "100k", "embedded", ...
         "context": "4k",                  # "4k", "32k", ... ("" when not applicable)
         "checkpoint": "final",            # "final" or "ckpt-N"
         "samples_seen": null,             # training examples seen at this checkpoint, or null
         "benchmark": "math",              # benchmark name (see paper_results.yaml aliases)
         "path": "results/eval/.../math.parquet",
         # optional:
         "teacher": "qwen25-math-7b-instruct",  # disambiguates the fusion summary lookup
         "profile": "embedded",            # training profile (informational)
         "backbone_label": "LLaMA3-8B",    # display names (default: backbone / variant)
         "variant_label": "TrajFusion",
         "paper_backbone": "llama3_8b",    # compare with this paper backbone (default: match
                                           # backbone or backbone_label against the aliases
                                           # in paper_results.yaml)
         "paper_row": "TF(HighDiv)",       # Table 2 row this run reproduces (see below)
         "train_meta": "results/train/.../final/train_meta.json"},  # Table 2's #Err trained
        ...],
      "fusion_summaries": [                # optional; needed for TrajFusion runs in table2
        {"pool": "15k", "teacher": "qwen", "variant": "tf", "path": ".../tf.summary.json",
         "k_max": 4, "strategy": "highdiv",     # optional; the JSON's own values win
         "variant_label": "TrajFusion"}],       # optional, informational
      "stats": [{"teacher": "qwen", "pool": "15k", "path": "results/stats/qwen/15k.parquet"}],
      "provenance": {...},                 # optional, any JSON; shown in index.md
      "reflection_metrics": [{"experiment": "main", "pass_k": [1, 5]}]  # optional (reflection tables)
    }

Rows are matched to the paper as follows: a run's backbone is compared with the paper's
when ``paper_backbone`` is given or ``backbone`` matches an alias in paper_results.yaml;
Table 1 rows by (backbone, method, data_size = paper train size; ICL runs have none, like the
paper's ICL rows), Table 3 rows by
(backbone, method, context), Table 2 rows by ``paper_row`` if given, else the row whose
label equals ``variant_label``, else the LowDiv row for the ``lowdiv`` strategy, else the
TF(k_max=k) row with the fusion summary's k_max. Runs
without a paper counterpart are listed as reproduced rows without a difference. Tables 1-3
use the runs with ``checkpoint == "final"``; two such runs for the same table cell are an
error. Table 1 gets an extra column (marked "*") for each
benchmark outside the paper's six; Tables 2 and 3 leave such runs out with a note (they are
in metrics.csv). Figure 3 plots the MATH runs listed for it, Figure 4 the GSM8K and MATH
runs; both use only runs with ``samples_seen`` set. The significance table pairs runs at
every checkpoint.

Outputs in ``--out-dir``: ``table1/2/3.{md,csv,tex}``, ``significance.{md,csv,tex}``,
``metrics.csv`` (every eval entry x metric with 95% bootstrap intervals),
``figure1.{png,pdf}`` (one row of panels per chosen statistics table, on the chosen
sources' problems), ``figure3.{png,pdf}``, ``figure4.{png,pdf}`` (always written; panels
without runs say so), ``graders.{md,csv}`` (per benchmark x run, the responses the two graders
judge differently, with examples), ``reflection-<experiment>.{md,csv,tex}`` for each
``reflection_metrics`` entry (DSR, ERR and Pass@k of the experiment's final runs x benchmarks)
and ``index.md`` linking everything. Accuracies are
percentages.

Modules: ``settings`` (``ReportSettings``), ``build`` (manifest, metrics, index and
``build_report``), ``metrics``, ``paper`` (the published numbers), ``tables`` (declarative
table specs), ``figures``, ``cost``, ``graders`` (grader parity), ``reflection`` (DSR, ERR, Pass@k), ``cli``
(the command).
"""

from trajfusion.report.build import SMOKE_CAVEAT, build_report, load_manifest, write_cost
from trajfusion.report.cli import register

__all__ = ["SMOKE_CAVEAT", "build_report", "load_manifest", "register", "write_cost"]
