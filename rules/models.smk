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
        spec=lambda w: as_json(config["models"][w.model]),
        seed=config["seed"],
        code=code("models"),
    shell:
        "trajfusion prepare-model --spec {params.spec:q} --seed {params.seed} --output {output} > {log} 2>&1"
