# Stage 5: filter by classifier scores and thresholds, then remove exact and near-duplicates
# (MinHash-LSH). Signatures depend only on the raw text, so a changed threshold reruns filter,
# dedup and what follows, never scoring or signatures.


rule signatures:
    input:
        f"{RESULTS}/raw/{{source}}/part-{{part}}.parquet",
    output:
        f"{RESULTS}/minhash/{{source}}/part-{{part}}.npy",
    log:
        f"{RESULTS}/logs/signatures/{{source}}/part-{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/signatures/{{source}}/part-{{part}}.tsv"
    wildcard_constraints:
        source=alternation(CURATED_SOURCES),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
    params:
        num_perm=config["curation"]["dedup"]["num_perm"],
        shingle_words=config["curation"]["dedup"]["shingle_words"],
        seed=config["seed"],
    script:
        "../scripts/signatures.py"


rule filter:
    input:
        raw=f"{RESULTS}/raw/{{source}}/part-{{part}}.parquet",
        scores=f"{RESULTS}/scores/{{source}}/part-{{part}}.parquet",
    output:
        part=f"{RESULTS}/filtered/{{source}}/part-{{part}}.parquet",
        stats=f"{RESULTS}/filtered/{{source}}/part-{{part}}.stats.json",
    log:
        f"{RESULTS}/logs/filter/{{source}}/part-{{part}}.log",
    wildcard_constraints:
        source=alternation(CURATED_SOURCES),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
    params:
        source="{source}",
        thresholds=lambda wildcards: config["curation"][wildcards.source],
    script:
        "../scripts/filter.py"


# Dedup joins clusters across all parts of a source, so it is one job per source with one output
# per part; the number of parts differs per source, hence one rule per curated source.
for curated_source in CURATED_SOURCES:

    rule:
        name:
            f"dedup_{curated_source}"
        input:
            filtered=source_parts("filtered", curated_source),
            raw=source_parts("raw", curated_source),
            signatures=[
                f"{RESULTS}/minhash/{curated_source}/part-{k}.npy"
                for k in parts(curated_source)
            ],
        output:
            parts=source_parts("curated", curated_source),
            stats=f"{RESULTS}/curated/{curated_source}/dedup.stats.json",
        log:
            f"{RESULTS}/logs/dedup/{curated_source}.log",
        benchmark:
            f"{RESULTS}/benchmarks/dedup/{curated_source}.tsv"
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=res("cpu", "mem_mb"),
            runtime=res("cpu", "runtime"),
        params:
            num_perm=config["curation"]["dedup"]["num_perm"],
            threshold=config["curation"]["dedup"]["jaccard_threshold"],
        script:
            "../scripts/dedup.py"
