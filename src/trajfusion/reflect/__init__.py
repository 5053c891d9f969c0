"""TAPO micro-reflective trajectories as SFT data, beside TrajFusion (issue 17; the TAPO summary).

Per candidate problem (at least one correct and one incorrect ``ok`` trajectory, accuracy
1 - r(x) inside ``[band_low, band_high]``; ``selection``), an incorrect trajectory y- is kept up
to the step where it first goes wrong, then a diagnosis and a corrected continuation guided by
the correct trajectory y+ follow (``construct``: the layout; ``steps``: step splitting). y+ is
fusion's y* for the same seed. At most one trajectory per problem; ``max_constructions`` caps
them (a seeded choice). Two constructors: ``rule`` (no model: the first step whose results
contradict y+, a templated diagnosis, y+'s steps after the matching point) and ``model`` (a
generation model answers ``resources/reflect_prompt.yaml`` in tagged sections; the reply is parsed
and its final answer verified, each failure a counted rejection). The rows have the fused
dataset's columns plus provenance (``contracts.REFLECTED_EXAMPLE``), so ``trajfusion train``
trains them as it trains fused data; ``loss_on_prefix: false`` leaves the kept prefix out of
the loss.

Modules: ``settings`` (``ReflectSettings``), ``selection``, ``steps``, ``construct``, ``rule``,
``model``, ``build`` (table in, dataset out) and ``cli``.
"""

from trajfusion.reflect.build import reflect_file, reflect_frame, reflect_rows
from trajfusion.reflect.cli import register
from trajfusion.reflect.rule import micro_reflective_constructor
from trajfusion.reflect.settings import ReflectSettings

__all__ = ["ReflectSettings", "micro_reflective_constructor", "reflect_file", "reflect_frame", "reflect_rows",
           "register"]
