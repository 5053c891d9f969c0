"""Model stage: ``prepare-model`` turns a configured model source into a plain transformers
directory.

Modules: ``cli`` (the command), ``settings`` (its settings, ``--spec`` and ``--seed``),
``prepare`` (the four sources and the atomic model directory), ``gguf`` (GGUF files:
locating, dequantizing, and the ``quantization_config`` fix training uses too).
"""

from trajfusion.model.cli import register
from trajfusion.model.prepare import prepare_model

__all__ = ["prepare_model", "register"]
