"""Settings of ``trajfusion export``: declared once (trajfusion.settings), read by the CLI and the rule."""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.export.formats import FORMATS
from trajfusion.io import InputError
from trajfusion.settings import Settings, setting


def _nonblank(value: str | None) -> str | None:
    return None if value is None or value.strip() else "must not be empty"


@dataclass(frozen=True, kw_only=True)
class ExportSettings(Settings):
    format: str = setting(help="record format of the exported file", choices=FORMATS)
    template: str | None = setting(None, help="the prompt template (resources/templates.yaml) whose system prompt "
                                   "every record carries; give this or --system")
    system: str | None = setting(None, help="the system prompt itself, instead of --template", check=_nonblank)
    provenance: bool = setting(True, help="keep the fused rows' provenance columns (id, n_errors, error_indices, "
                               "correct_index, alpha, k_max, strategy, seed) beside the format's own")
    name: str | None = setting(None, help="the dataset's name: its key in LLaMA-Factory's dataset_info.json and "
                               "the card's title; unset: the output file's name without .jsonl", check=_nonblank)
    teacher: str | None = setting(None, help="teacher name, for the card; unset: read from a results/fused/ input path")
    pool: str | None = setting(None, help="pool name, for the card; unset: read from a results/fused/ input path")
    variant: str | None = setting(None, help="variant name, for the card; unset: read from a results/fused/ "
                                  "input path")
    teacher_model: str | None = setting(None, help="the model that wrote the responses (a Hub id, a file), for "
                                        "the card's license notes")
    dataset_licenses: dict | None = setting(None, help="licenses of declared datasets (config `datasets:`), as "
                                            "JSON {source: license}; built-in sources' are in resources/licenses.yaml")

    def __post_init__(self):
        super().__post_init__()
        if (self.template is None) == (self.system is None):
            raise InputError("--template, --system: give exactly one (the template whose system prompt the "
                             "records carry, or the system prompt itself)")
