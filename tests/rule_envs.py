"""Print, as JSON, the conda env file each rule of a config's DAG runs in (``{rule: [files]}``).

Snakemake resolves a rule's ``conda:`` per job; ``--list-conda-envs`` would need conda itself,
so this builds the DAG through Snakemake's API and reads each job's env spec.

    python tests/rule_envs.py CONFIGFILE WORKDIR
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings

REPO = Path(__file__).resolve().parents[1]


def rule_envs(configfile: Path, workdir: Path) -> dict[str, list[str]]:
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                                    config_settings=ConfigSettings(configfiles=[configfile]),
                                    snakefile=REPO / "Snakefile", workdir=workdir)
        workflow_api.dag(DAGSettings())
        workflow = workflow_api._workflow  # no public API lists per-job envs without conda
        workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=False)
        workflow._build_dag()
        envs = defaultdict(set)
        for job in workflow.dag.jobs:
            spec = job.conda_env_spec
            envs[job.rule.name].add(Path(spec.file.get_path_or_uri(secret_free=True)).name if spec else None)
    return {rule: sorted(files, key=str) for rule, files in envs.items()}


if __name__ == "__main__":
    print(json.dumps(rule_envs(Path(sys.argv[1]), Path(sys.argv[2]))))
