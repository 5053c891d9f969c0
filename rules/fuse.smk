# Fusion stage: one dataset per configured variant (vanilla RFT is k_max = 0), from the
# verified table; alpha is fixed or calibrated to a target mean number of fused errors.


def variant_spec(variant):
    return config["fusion"]["variants"][variant]


def calibrated_alpha_source(variant):
    """The variant whose calibrated alpha this one uses, or None for a fixed alpha / RFT."""
    spec = variant_spec(variant)
    if spec["k_max"] == 0:
        return None
    if "alpha_target" in spec:
        return variant
    return spec.get("alpha_from")


def fuse_inputs(w):
    inputs = {"verified": verified_path(w.teacher, w.pool), "code": code("fuse")}
    source = calibrated_alpha_source(w.variant)
    if source:
        inputs["alpha"] = f"{RESULTS}/fused/{w.teacher}/{w.pool}/{source}.alpha.json"
    return inputs


def alpha_flag(w, input):
    spec = variant_spec(w.variant)
    if spec["k_max"] == 0:
        return ""  # vanilla RFT: no alpha
    if calibrated_alpha_source(w.variant):
        return f"--alpha-file {input.alpha}"
    return f"--alpha {spec['alpha']}"


def fusion_flags(variant):
    spec = variant_spec(variant)
    flags = (f"--k-max {spec['k_max']} --strategy {spec.get('strategy', 'highdiv')}"
             f" --seed {config['fusion'].get('seed', config['seed'])}"
             f" --certainty-prob {config['fusion'].get('certainty_prob', 0.0)}")
    if config["fusion"].get("phrases"):
        flags += f" --phrases {shlex.quote(config['fusion']['phrases'])}"
    return flags


rule calibrate_alpha:
    input:
        verified=lambda w: verified_path(w.teacher, w.pool),
        code=code("fuse"),
    output:
        f"{RESULTS}/fused/{{teacher}}/{{pool}}/{{variant}}.alpha.json",
    params:
        k_max=lambda w: variant_spec(w.variant)["k_max"],
        target=lambda w: variant_spec(w.variant)["alpha_target"],
        strategy=lambda w: variant_spec(w.variant).get("strategy", "highdiv"),
    log:
        f"{LOGS}/calibrate_alpha/{{teacher}}/{{pool}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/calibrate_alpha/{{teacher}}/{{pool}}/{{variant}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion calibrate-alpha --input {input.verified} --k-max {params.k_max} --target-errors {params.target}"
        " --strategy {params.strategy} --output {output} > {log} 2>&1"


rule fuse:
    input:
        unpack(fuse_inputs),
    output:
        data=f"{RESULTS}/fused/{{teacher}}/{{pool}}/{{variant}}.jsonl",
        summary=f"{RESULTS}/fused/{{teacher}}/{{pool}}/{{variant}}.summary.json",
    params:
        flags=lambda w: fusion_flags(w.variant),
        alpha=alpha_flag,
    log:
        f"{LOGS}/fuse/{{teacher}}/{{pool}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/fuse/{{teacher}}/{{pool}}/{{variant}}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "trajfusion fuse --input {input.verified} --output {output.data} --summary {output.summary}"
        " {params.flags} {params.alpha} > {log} 2>&1"
