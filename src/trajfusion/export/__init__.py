"""Export: a fused dataset as training data for other trainers, with its system prompt and a dataset card.

``trajfusion export --input FUSED.jsonl --output OUT.jsonl --format FORMAT (--template NAME |
--system TEXT)`` writes each fused example (``contracts.FUSED_EXAMPLE``: a user and an assistant
message) as one record of FORMAT (``formats``): ``messages`` (OpenAI / TRL chat), ``sharegpt``
(LLaMA-Factory), ``alpaca`` or ``prompt_completion`` (TRL, conversational), with the system prompt
of the named template (``resources/templates.yaml``) or the given text. The problem, the fused
assistant text and the system prompt are copied unchanged; only the system prompt's text is
exported, not a text template's layout (the target trainer's chat template places it).

Beside OUT it writes the dataset card ``README.md`` (``card``: Hugging Face front matter, what the
data is, how it was built from the fusion summary and the rows' provenance, counts, the system
prompt, the licenses of its sources from ``resources/licenses.yaml``) and, with ``--format
sharegpt``, LLaMA-Factory's ``dataset_info.json`` entry (``llamafactory``), merged into an
existing file. One exported file per folder: a card describes one file.

Modules: ``settings`` (``ExportSettings``), ``formats`` (one record per format), ``card``,
``licenses``, ``llamafactory``, ``build`` (file in, files out) and ``cli``.
"""

from trajfusion.export.build import export_file, read_fused, system_prompt
from trajfusion.export.cli import register
from trajfusion.export.formats import BUILDERS, FORMATS, PROVENANCE, SHAREGPT_COLUMNS, SHAREGPT_TAGS, export_record
from trajfusion.export.licenses import SourceLicense, load_licenses
from trajfusion.export.settings import ExportSettings

__all__ = ["BUILDERS", "FORMATS", "PROVENANCE", "SHAREGPT_COLUMNS", "SHAREGPT_TAGS", "ExportSettings",
           "SourceLicense", "export_file", "export_record", "load_licenses", "read_fused", "register",
           "system_prompt"]
