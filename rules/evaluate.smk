# Stage 9: the structured-output benchmarks for every arm at every stage (base, sft, dpo); one
# result JSON per (arm, stage, benchmark) with metric values, n and bootstrap confidence intervals.

# The JSON Schema suite was locked before any training and is committed with its sha256; the
# workflow takes a stratified subset of it and never regenerates it.
LOCKED_JSON_SUITE = "trellis/benchmarks/data/json_schema_suite.jsonl"


rule build_json_suite:
    input:
        locked=LOCKED_JSON_SUITE,
        locked_sha256=f"{LOCKED_JSON_SUITE}.sha256",
    output:
        suite=f"{RESULTS}/suites/json_schema.jsonl",
        sha256=f"{RESULTS}/suites/json_schema.jsonl.sha256",
    log:
        f"{RESULTS}/logs/build_json_suite.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
    params:
        n=config["evaluate"]["json_schema"]["examples"],
    script:
        "../scripts/build_json_suite.py"


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        f"{RESULTS}/eval/{{arm}}/{{stage}}/{{benchmark}}.json",
    log:
        f"{RESULTS}/logs/evaluate/{{arm}}/{{stage}}/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{arm}}/{{stage}}/{{benchmark}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: res("model", "threads")
    resources:
        mem_mb=res("model", "mem_mb"),
        runtime=res("model", "runtime"),
        gpu=res("model", "gpu"),
    params:
        arm="{arm}",
        stage="{stage}",
        benchmark="{benchmark}",
        cfg=lambda wildcards: benchmark_config(wildcards.benchmark),
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/evaluate.py"
