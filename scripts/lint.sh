#!/usr/bin/env bash
# Lint: ruff (Python), snakefmt (rule files) and Snakemake's own linter on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
"$bin/ruff" check src tests bench
"$bin/snakefmt" --check Snakefile rules
"$bin/snakemake" --lint --snakefile Snakefile --cores 1 > /tmp/trajfusion-lint.txt 2>&1 || {
  cat /tmp/trajfusion-lint.txt; exit 1; }
echo "lint: ruff, snakefmt and snakemake --lint clean"
