# Model preparation: every configured model becomes a plain transformers directory once.


rule prepare_model:
    output:
        directory(PATHS["model"]),
    log:
        log_pattern("prepare_model"),
    benchmark:
        cost_pattern("prepare_model")
    conda:
        "../envs/train.yaml"
    params:
        settings=lambda w: model_settings(w.model),
        code=code("models"),
    shell:
        "trajfusion prepare-model --settings {params.settings:q} --output {output} > {log} 2>&1"
