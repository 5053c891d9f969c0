# Export stage: every fused dataset of the plan as training data for other trainers (TRL,
# LLaMA-Factory), with the system prompt of the template training used, a dataset card and
# (sharegpt) LLaMA-Factory's dataset_info.json. `snakemake export`; not part of `all`. One rule
# per format, as the formats write different files.

for _format in FORMATS:

    rule:
        name:
            f"export_{_format}"
        input:
            unpack(export_inputs),
        output:
            **export_outputs(_format),
        log:
            partly(log_pattern("export"), format=_format),
        benchmark:
            partly(cost_pattern("export"), format=_format)
        conda:
            "../envs/core.yaml"
        params:
            settings=lambda w, _f=_format: export_settings(w, _f),
            code=code("export"),
        shell:
            "trajfusion export --input {input.fused} --output {output.data} --summary {input.summary}"
            " --pool-table {input.pool} --settings {params.settings:q} > {log} 2>&1"


rule export:
    input:
        export_targets(),
