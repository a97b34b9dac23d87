# Stage 2: a stratified sample of FineWeb-Edu (web) and StarCoderData (code) documents, labeled
# for the five tasks by the configured backend (offline, openai-batch or openai-chat).


rule label_sample:
    input:
        parts=lambda wildcards: get_source_parts("raw", DOMAIN_SOURCE[wildcards.domain]),
    output:
        f"{RESULTS}/labels/sample-{{domain}}.parquet",
    log:
        f"{RESULTS}/logs/label_sample/{{domain}}.log",
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        n=lambda wildcards: config["labels"]["sample"][wildcards.domain],
        seed=config["seed"],
    script:
        "../scripts/label_sample.py"


rule label:
    input:
        sample=lambda wildcards: f"{RESULTS}/labels/sample-{TASKS[wildcards.task].domain}.parquet",
    output:
        labels=f"{RESULTS}/labels/{{task}}.parquet",
        report=f"{RESULTS}/labels/{{task}}.report.json",
    log:
        f"{RESULTS}/logs/label/{{task}}.log",
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources(
            "cpu", internet=NEEDS_INTERNET["label"], runtime=label_runtime()
        ),
    params:
        task="{task}",
        labels=labeler_config(),
        # The OpenAI backends keep their batch manifest or request cache here. Not an output:
        # Snakemake deletes a failed job's outputs, and this must survive a crash so that the
        # rerun resumes instead of paying again.
        work_dir=lambda wildcards: f"{RESULTS}/labels/{wildcards.task}.work",
    script:
        "../scripts/label.py"
