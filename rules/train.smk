# Stages 7-8: pretraining with LitGPT for the arms trained here, conversion to Hugging Face
# LlamaForCausalLM, baselines fetched at a revision, then identical SFT and DPO for every arm.


PUBLIC_POSTTRAIN = list(
    config["posttrain"]["public"]
)  # real post-training sets (study)


rule pretrain:
    input:
        manifest=f"{RESULTS}/shards/{{arm}}/manifest.json",
        tokenizer=f"{RESULTS}/tokenizer",
    output:
        checkpoint=f"{RESULTS}/checkpoints/{{arm}}/final/lit_model.pth",
        metrics=f"{RESULTS}/checkpoints/{{arm}}/metrics.csv",
    log:
        f"{RESULTS}/logs/pretrain/{{arm}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{arm}}.tsv"
    wildcard_constraints:
        arm=alternation(PRETRAIN_ARMS),
    priority: TRAINING_PRIORITY
    conda:
        "../envs/pretrain.yaml"
    threads: res("pretrain", "threads")
    resources:
        **job_resources("pretrain", **pretrain_launch_resources()),
    params:
        arm="{arm}",
        model=config["model"],
        # keep_checkpoints only decides what stays on disk: the script reads it from the config,
        # so changing it reruns nothing.
        pretrain={
            k: v for k, v in config["pretrain"].items() if k != "keep_checkpoints"
        },
        seed=config["seed"],
    script:
        "../scripts/pretrain.py"


rule convert:
    input:
        checkpoint=f"{RESULTS}/checkpoints/{{arm}}/final/lit_model.pth",
        tokenizer=f"{RESULTS}/tokenizer",
    output:
        model=directory(f"{RESULTS}/models/{{arm}}/base"),
    log:
        f"{RESULTS}/logs/convert/{{arm}}.log",
    wildcard_constraints:
        arm=alternation(PRETRAIN_ARMS),
    priority: TRAINING_PRIORITY
    conda:
        "../envs/pretrain.yaml"
    threads: 1
    resources:
        **job_resources("pretrain", runtime=res("cpu", "runtime")),
    script:
        "../scripts/convert.py"


rule fetch_baseline:
    output:
        model=directory(f"{RESULTS}/models/{{arm}}/base"),
    log:
        f"{RESULTS}/logs/fetch_baseline/{{arm}}.log",
    wildcard_constraints:
        arm=alternation(BASELINE_ARMS),
    conda:
        "../envs/pretrain.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["fetch_baseline"]),
    params:
        repo=lambda wildcards: config["arms"][wildcards.arm]["repo"],
        revision=baseline_revision,
    script:
        "../scripts/fetch_baseline.py"


rule fetch_posttrain_data:
    output:
        directory(f"{RESULTS}/downloads/posttrain/{{name}}"),
    log:
        f"{RESULTS}/logs/fetch_posttrain_data/{{name}}.log",
    wildcard_constraints:
        name=alternation(PUBLIC_POSTTRAIN),
    conda:
        "../envs/posttrain.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["fetch_posttrain_data"]),
    params:
        name="{name}",
        repo=public_posttrain_value("repo"),
        revision=public_posttrain_value("revision"),
        file=public_posttrain_value("file"),
        gated=lambda wildcards: config["posttrain"]["public"][wildcards.name].get(
            "gated", False
        ),
    script:
        "../scripts/fetch_posttrain_data.py"


rule build_posttrain_data:
    input:
        tokenizer=f"{RESULTS}/tokenizer",
        public=expand(f"{RESULTS}/downloads/posttrain/{{name}}", name=PUBLIC_POSTTRAIN),
    output:
        sft=f"{RESULTS}/posttrain/sft.jsonl",
        dpo=f"{RESULTS}/posttrain/dpo.jsonl",
        manifest=f"{RESULTS}/posttrain/manifest.json",
    log:
        f"{RESULTS}/logs/build_posttrain_data.log",
    priority: CURATION_PRIORITY
    conda:
        "../envs/posttrain.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        n_sft=config["posttrain"]["sft_examples"],
        n_dpo=config["posttrain"]["dpo_pairs"],
        seed=config["seed"],
        max_length=config["posttrain"]["max_length"],
        public=config["posttrain"]["public"],
        real_schemas=config["posttrain"]["real_schemas"],
    script:
        "../scripts/build_posttrain_data.py"


rule sft:
    input:
        model=f"{RESULTS}/models/{{arm}}/base",
        data=f"{RESULTS}/posttrain/sft.jsonl",
        manifest=f"{RESULTS}/posttrain/manifest.json",
    output:
        model=directory(f"{RESULTS}/models/{{arm}}/sft"),
    log:
        f"{RESULTS}/logs/sft/{{arm}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sft/{{arm}}.tsv"
    priority: TRAINING_PRIORITY
    conda:
        "../envs/posttrain.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        cfg=config["posttrain"]["sft"],
        max_length=config["posttrain"]["max_length"],
        seed=config["seed"],
    script:
        "../scripts/sft.py"


rule dpo:
    input:
        model=f"{RESULTS}/models/{{arm}}/sft",
        data=f"{RESULTS}/posttrain/dpo.jsonl",
        manifest=f"{RESULTS}/posttrain/manifest.json",
    output:
        model=directory(f"{RESULTS}/models/{{arm}}/dpo"),
    log:
        f"{RESULTS}/logs/dpo/{{arm}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dpo/{{arm}}.tsv"
    priority: TRAINING_PRIORITY
    conda:
        "../envs/posttrain.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        cfg=config["posttrain"]["dpo"],
        max_length=config["posttrain"]["max_length"],
        seed=config["seed"],
    script:
        "../scripts/dpo.py"
