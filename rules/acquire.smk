# Stage 1: acquire each source (Hugging Face download, or the demo generator writing the same
# native column shapes), then normalize it into parts of id/text/source/metadata.


rule acquire:
    output:
        manifest=f"{RESULTS}/downloads/{{source}}/MANIFEST.json",
    log:
        f"{RESULTS}/logs/acquire/{{source}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["acquire"]),
    params:
        source="{source}",
        spec=lambda wildcards: acquire_spec(wildcards.source),
    script:
        "../scripts/acquire.py"


rule normalize:
    input:
        manifest=f"{RESULTS}/downloads/{{source}}/MANIFEST.json",
    output:
        part=f"{RESULTS}/raw/{{source}}/part-{{part}}.parquet",
        stats=f"{RESULTS}/raw/{{source}}/part-{{part}}.stats.json",
    log:
        f"{RESULTS}/logs/normalize/{{source}}/part-{{part}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        source="{source}",
        part=lambda wildcards: int(wildcards.part),
        parts=source_value("parts"),
        subject_filter=source_value("subject_filter"),
        # StackExchange's sites and answer-score floor (None for every other source).
        stackexchange=lambda wildcards: (
            {
                k: config["sources"][wildcards.source][k]
                for k in ("sites", "min_answer_score")
            }
            if wildcards.source == "stackexchange"
            else None
        ),
    script:
        "../scripts/normalize.py"
