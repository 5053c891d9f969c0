# Model preparation: every configured model becomes a plain transformers directory once.


rule prepare_model:
    input:
        code=code("models"),
    output:
        directory(f"{RESULTS}/models/{{model}}"),
    params:
        spec=lambda w: as_json(config["models"][w.model]),
        seed=config["seed"],
    log:
        f"{LOGS}/prepare_model/{{model}}.log",
    benchmark:
        f"{BENCH}/prepare_model/{{model}}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "trajfusion prepare-model --spec {params.spec:q} --seed {params.seed} --output {output} > {log} 2>&1"
