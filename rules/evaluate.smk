# Stage 9: the benchmarks for every arm at every stage (base, sft, dpo): structured output (JSON
# Schema suite, BFCL, extraction, classification) and code (HumanEval, MBPP) by generation, and
# lm-eval-harness tasks. One result JSON per (arm, stage, benchmark) with metric values, n and
# bootstrap confidence intervals.

# The JSON Schema suite was locked before any training and is committed with its sha256; the
# workflow takes a stratified subset of it and never regenerates it. Two locked versions
# (trellis.evaluate.json_schema.SUITES): evaluate.json_schema.suite picks one.
JSON_SUITES = {
    "v1": "trellis/evaluate/data/json_schema_suite.jsonl",
    "v2": "trellis/evaluate/data/json_schema_suite_v2.jsonl",
}
LOCKED_JSON_SUITE = JSON_SUITES[config["evaluate"]["json_schema"].get("suite", "v1")]


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
        **job_resources("cpu"),
    params:
        n=config["evaluate"]["json_schema"]["examples"],
    script:
        "../scripts/build_json_suite.py"


# Every generation benchmark on one loaded model: one result file per benchmark (and per BFCL
# category, with BFCL's summary).
rule evaluate:
    input:
        unpack(get_evaluate_inputs),
    output:
        [
            f"{RESULTS}/eval/{{arm}}/{{stage}}/{bench}.json"
            for bench in GENERATION_RESULTS
        ],
    log:
        f"{RESULTS}/logs/evaluate/{{arm}}/{{stage}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{arm}}/{{stage}}.tsv"
    priority: LONG_EVALUATION_PRIORITY
    conda:
        "../envs/evaluate.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        arm="{arm}",
        stage="{stage}",
        benchmarks=generation_benchmarks(),
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/evaluate.py"


# An LLM judge of the extraction outputs where evaluate.extraction.judge is set (study; not the
# demo): a job of its own after the arm's evaluate job, so the GPU job never waits on a batch that
# may take the whole completion window, and an internet job like label. Its result joins the
# headline table as benchmark extraction_judged.
rule judge_extraction:
    input:
        extraction=f"{RESULTS}/eval/{{arm}}/{{stage}}/extraction.json",
    output:
        f"{RESULTS}/eval/{{arm}}/{{stage}}/extraction_judged.json",
    log:
        f"{RESULTS}/logs/judge_extraction/{{arm}}/{{stage}}.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        **job_resources(
            "cpu", internet=NEEDS_INTERNET["judge_extraction"], runtime=judge_runtime()
        ),
    params:
        judge=extraction_judge_params,
        # Every judged (arm, stage): each job's cost cap is an equal share of judge.max_cost_usd.
        n_jobs=len(ARMS) * len(STAGES),
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
        # The batch manifest, kept across a failed job (not an output, as in rule label); all judge
        # jobs' work directories share one parent, so they share one queue ledger.
        work_dir=lambda wildcards: f"{RESULTS}/judge/extraction-{wildcards.arm}-{wildcards.stage}.work",
    script:
        "../scripts/judge_extraction.py"


# MBPP (study config) is downloaded once, with a manifest, like an acquired source.
rule fetch_eval_data:
    output:
        manifest=f"{RESULTS}/downloads/eval/{{dataset}}/MANIFEST.json",
    log:
        f"{RESULTS}/logs/fetch_eval_data/{{dataset}}.log",
    wildcard_constraints:
        dataset="mbpp",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["fetch_eval_data"]),
    params:
        dataset="{dataset}",
        hf=lambda wildcards: config["evaluate"][wildcards.dataset]["hf"],
    script:
        "../scripts/fetch_eval_data.py"


# The demo's lm-eval tasks: YAMLs and local data, found through lm-eval's include_path.
rule build_harness_tasks:
    output:
        directory(f"{RESULTS}/suites/lm_eval"),
    log:
        f"{RESULTS}/logs/build_harness_tasks.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        docs=config["evaluate"]["harness"]["demo_tasks"],
        topics=config["labels"]["topics"],
        seed=config["seed"],
    script:
        "../scripts/build_harness_tasks.py"


# lm-eval's own tasks (study) load their datasets from the hub when lm-eval builds them: this job
# builds them once, where the internet is reachable, into a datasets cache beside its manifest, and
# evaluate_harness reads that cache offline. The demo's local tasks need neither.
rule fetch_harness_data:
    output:
        manifest=HARNESS_DATA_MANIFEST,
    log:
        f"{RESULTS}/logs/fetch_harness_data.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["fetch_harness_data"]),
    params:
        tasks=HARNESS_TASKS,
    script:
        "../scripts/fetch_harness_data.py"


# One job per model runs every lm-eval task (one model load) and writes one result per task.
rule evaluate_harness:
    input:
        unpack(get_harness_inputs),
    output:
        [f"{RESULTS}/eval/{{arm}}/{{stage}}/lm_{task}.json" for task in HARNESS_TASKS],
    log:
        f"{RESULTS}/logs/evaluate_harness/{{arm}}/{{stage}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_harness/{{arm}}/{{stage}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        arm="{arm}",
        stage="{stage}",
        cfg=config["evaluate"]["harness"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/evaluate_harness.py"


# Before the arms' lm-eval results are trusted (tables waits for it): lm-eval, set up as the arms
# run it, must reproduce Pythia-410M-deduped's published zero-shot acc on the study's final
# Pythia-410M-deduped baseline within the tolerance, else the job fails (no output) naming each
# task off. Study only: the demo's local tasks have no published numbers.
rule validate_harness:
    input:
        unpack(get_harness_validation_inputs),
    output:
        json=f"{RESULTS}/eval/harness_validation.json",
        csv=report(
            f"{RESULTS}/eval/harness_validation.csv",
            caption="../report/harness_validation.rst",
            category="5. Benchmarks",
            labels={"table": "harness validation"},
        ),
    log:
        f"{RESULTS}/logs/validate_harness.log",
    benchmark:
        f"{RESULTS}/benchmarks/validate_harness.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        arm=HARNESS_VALIDATION_ARM,
        # The arms' settings that bear on the numbers (the tasks are the published ones, zero-shot).
        cfg={k: config["evaluate"]["harness"][k] for k in ("batch_size", "limit")},
        published=PYTHIA_410M_DEDUPED_ZERO_SHOT,
        tolerance=VALIDATION_TOLERANCE,
        seed=config["seed"],
    script:
        "../scripts/validate_harness.py"


# Before the arms' BFCL results are trusted (tables waits for it): BFCL's prompt mode, run as the
# arms run it, must reproduce the leaderboard's published prompt-mode numbers of the model in
# evaluate.bfcl.validation (Qwen/Qwen3-0.6B; trellis.evaluate.bfcl_validation cites the source)
# within the tolerance, else the job fails (no output) naming each section off. Study only: the
# demo sets no validation (BFCL_VALIDATION is then empty). The reference model comes from the hub
# in a job of its own, where the internet is reachable; validate_bfcl reads it offline.
rule fetch_bfcl_reference:
    output:
        model=directory(BFCL_REFERENCE_DIR),
    log:
        f"{RESULTS}/logs/fetch_bfcl_reference.log",
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["fetch_bfcl_reference"]),
    params:
        repo=lambda wildcards: bfcl_validation_cfg()["repo"],
        revision=lambda wildcards: bfcl_validation_cfg()["revision"],
    script:
        "../scripts/fetch_bfcl_reference.py"


rule validate_bfcl:
    input:
        model=BFCL_REFERENCE_DIR,
    output:
        json=f"{RESULTS}/eval/bfcl_validation.json",
        csv=report(
            f"{RESULTS}/eval/bfcl_validation.csv",
            caption="../report/bfcl_validation.rst",
            category="5. Benchmarks",
            labels={"table": "BFCL validation"},
        ),
    log:
        f"{RESULTS}/logs/validate_bfcl.log",
    benchmark:
        f"{RESULTS}/benchmarks/validate_bfcl.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        cfg=bfcl_validation_cfg,
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/validate_bfcl.py"
