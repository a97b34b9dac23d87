# Stages 3-4: one ModernBERT classifier per task, then every document of the curated sources
# scored by its classifiers (scores kept apart from text, keyed by id).


# The study's base model (classifiers.base_model), downloaded once where the internet is reachable:
# train_classifier reads the directory and runs offline on a GPU node. Not in the demo's DAG.
rule fetch_classifier_base:
    output:
        directory(CLASSIFIER_BASE_DIR),
    log:
        f"{RESULTS}/logs/fetch_classifier_base.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["fetch_classifier_base"]),
    params:
        repo=config["classifiers"]["base_model"],
        revision=BASE_MODEL_REVISION,
    script:
        "../scripts/fetch_classifier_base.py"


rule train_classifier:
    input:
        labels=f"{RESULTS}/labels/{{task}}.parquet",
        tokenizer=get_classifier_tokenizer(),
        base_model=get_classifier_base(),
    output:
        model=directory(f"{RESULTS}/classifiers/{{task}}/model"),
        metrics=f"{RESULTS}/classifiers/{{task}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_classifier/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_classifier/{{task}}.tsv"
    priority: CURATION_PRIORITY
    conda:
        "../envs/classify.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        task="{task}",
        labels=labeler_config(),
        classifiers=config["classifiers"],
        seed=config["seed"],
    script:
        "../scripts/train_classifier.py"


rule score:
    input:
        part=f"{RESULTS}/raw/{{source}}/part-{{part}}.parquet",
        classifiers=lambda wildcards: get_classifier_dirs(wildcards.source),
        # The Stage 0 gate: scoring waits for it; ancient, so recalibrating never rescores.
        stage0=ancient(f"{RESULTS}/stage0/{{source}}/report.json"),
    output:
        f"{RESULTS}/scores/{{source}}/part-{{part}}.parquet",
    log:
        f"{RESULTS}/logs/score/{{source}}/part-{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score/{{source}}/part-{{part}}.tsv"
    wildcard_constraints:
        source=alternation(CURATED_SOURCES),
    priority: CURATION_PRIORITY
    conda:
        "../envs/classify.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        tasks=lambda wildcards: tasks_for_source(wildcards.source),
        labels=labeler_config(),
        batch_size=config["scoring"]["batch_size"],
        max_length=config["classifiers"]["max_length"],
        # The seeds' compression pre-filter runs before any model inference (code only).
        skip_below_compression_ratio=lambda wildcards: code_prefilter(wildcards.source),
    script:
        "../scripts/score.py"


# The seeds' classifier metrics (test split; validation beside it) as one table for the report.
rule classifier_metrics:
    input:
        metrics=[f"{RESULTS}/classifiers/{t}/metrics.json" for t in TASKS],
    output:
        csv=report(
            f"{RESULTS}/classifiers/metrics.csv",
            caption="../report/classifier_metrics.rst",
            category="2. Classifiers",
        ),
        md=f"{RESULTS}/classifiers/metrics.md",
    log:
        f"{RESULTS}/logs/classifier_metrics.log",
    conda:
        "../envs/classify.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    script:
        "../scripts/classifier_metrics.py"
