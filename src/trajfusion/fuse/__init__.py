"""Fused training data: vanilla RFT, TrajFusion and its ablations (paper §3.2–3.3, App. A.2).

Per problem x, only trajectories with ``status == "ok"`` count: they form K, the correct
set Y+ and the incorrect set Y−. Problems without a correct trajectory are dropped. With
r = |Y−|/K and u = the number of distinct incorrect-answer groups, TrajFusion fuses

    k(x) = min(k_max, floor(alpha * r * u))

incorrect trajectories, computed exactly with ``fractions.Fraction``; k_max = 0 is vanilla
RFT. Incorrect-answer groups are ordered by size (largest first), then by the n_tokens of
their shortest member, then by the group's answer string. Within a group, members are
ordered by n_tokens, then sample_idx. ``highdiv`` (the paper's method) takes the shortest
unused member of each group in turn (round robin, continuing into second-shortest members
once every group gave one); ``lowdiv`` (Table 2 ablation) exhausts the largest group first
and spills into the next. Fewer than k errors are fused when Y− runs out.

The correct trajectory y* is drawn from Y+ (sorted by sample_idx) with an RNG keyed on
(seed, problem_id) only, so RFT and every TrajFusion variant built with one seed share y*.
Phrases come from a second RNG keyed on (seed, problem_id, "phrases").

Each trajectory is split into its reasoning and its final part (``trajfusion.trajectory``:
a long-form teacher's ``<think>`` block content, and what follows its ``</think>``; a tag-free
completion is all reasoning), so the assistant text has exactly one think block (parts
stripped and joined by "\\n"; ``trajfusion.fused_text``):

    <think>\\n{error 1 reasoning}\\n{error phrase}\\n...\\n{error k reasoning}\\n{error phrase}\\n
    {correct reasoning}\\n{success phrase}[\\n{certainty phrase}]\\n</think>\\n[{correct final}\\n]
    The answer is \\boxed{answer}.

and with k = 0 exactly ``<think>\\n{correct reasoning}\\n</think>\\n[{correct final}\\n]The answer is
\\boxed{answer}.`` (no phrases), where {answer} is y*'s extracted ``answer`` and {correct final}
appears only with ``keep_final`` (the errors' final parts never do). Errors appear in fusion
order. A completion that opens ``<think>`` and never closes it is an InputError (the verifier's
``unclosed_think`` filter drops those). The rows carry the character spans of each error and of
the success phrase, so training can remove the last fused errors from an over-long example.
The rows carry alpha as exact text ("0.5", "16/21"; null for RFT built without alpha).

Modules: ``settings`` (``FuseSettings``, ``CalibrateSettings``), ``inputs`` (the verified table), ``selection``
(the vectorised plan), ``reference`` (the same plan, one problem at a time, for the tests),
``render`` (text, rows, summary), ``build`` (table in, dataset out), ``calibrate`` (alpha
calibration) and ``cli``.
"""

from trajfusion.fuse.build import fuse_file, fuse_frame
from trajfusion.fuse.calibrate import AlphaCalibration, calibrate, calibrate_alpha, calibration_record
from trajfusion.fuse.cli import register
from trajfusion.fuse.inputs import ParquetTexts, read_verified, validate_verified
from trajfusion.fuse.render import draw_phrases, fuse_text
from trajfusion.fuse.selection import fusion_count, plan_fusion
from trajfusion.fuse.settings import CalibrateSettings, FuseSettings, format_alpha, parse_alpha
from trajfusion.phrases import Phrases, load_phrases

__all__ = ["AlphaCalibration", "CalibrateSettings", "FuseSettings", "ParquetTexts", "Phrases", "calibrate",
           "calibrate_alpha", "calibration_record", "draw_phrases", "format_alpha", "fuse_file", "fuse_frame",
           "fuse_text", "fusion_count", "load_phrases", "parse_alpha", "plan_fusion", "read_verified", "register",
           "validate_verified"]
