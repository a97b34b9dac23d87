# Stage 1: acquire each source (Hugging Face download, or the demo generator writing the same
# native layout and column types), then normalize it into parts of id/text/source/metadata.
# A download takes only a pinned revision (a commit id or a version branch; see
# `python -m trellis.acquire.pin`), checks a gated source's HF_TOKEN and that the pinned listing
# has a file for each of the source's parts before fetching anything.


rule acquire:
    output:
        manifest=f"{RESULTS}/downloads/{{source}}/MANIFEST.json",
    log:
        f"{RESULTS}/logs/acquire/{{source}}.log",
    priority: CURATION_PRIORITY
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
    priority: CURATION_PRIORITY
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
