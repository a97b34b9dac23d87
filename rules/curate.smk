# Stage 5: curation of FineWeb-Edu and StarCoderData. Per source, first the Stage 0 gate. Per part:
# MinHash signatures (from raw text, independent of any threshold) and the filter (the source's
# policy: hard rules, priority, group). Per source: dedup (band-partitioned LSH over the filtered
# documents' signatures, one document kept per cluster) and select (the best documents up to the
# mix budget, groups rebalanced). A changed threshold reruns filter, dedup, select and what
# follows (and, for FineWeb-Edu's topic thresholds, Stage 0 on its sample), never scoring or
# signatures.


# Stage 0 (the gate): the source's classifiers on a sample; score (as ancient: recalibrating never
# rescores the source) and filter need its report, which is only written when every check passes or
# is accepted (curation.stage0.accept), so a degenerate classifier stops the DAG before the scoring
# spend, with the failing checks named in the log. The report holds the topic thresholds the filter
# applies: calibrated here (curation.fineweb_edu.topic_thresholds: calibrated) or pinned in the
# config and checked here.
rule stage0:
    input:
        parts=lambda wildcards: get_source_parts("raw", wildcards.source),
        classifiers=lambda wildcards: get_classifier_dirs(wildcards.source),
    output:
        report=f"{RESULTS}/stage0/{{source}}/report.json",
        plot=report(
            f"{RESULTS}/stage0/{{source}}/stage0.png",
            caption="../report/stage0.rst",
            category="3. Curation",
            subcategory="Stage 0",
        ),
    log:
        f"{RESULTS}/logs/stage0/{{source}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stage0/{{source}}.tsv"
    wildcard_constraints:
        source=alternation(CURATED_SOURCES),
    priority: CURATION_PRIORITY
    conda:
        "../envs/classify.yaml"
    threads: res("model", "threads")
    resources:
        **job_resources("model", gpu=True),
    params:
        source="{source}",
        tasks=lambda wildcards: tasks_for_source(wildcards.source),
        labels=labeler_config(),
        settings=lambda wildcards: stage0_settings(wildcards.source),
        seed=config["seed"],
        batch_size=config["scoring"]["batch_size"],
        max_length=config["classifiers"]["max_length"],
        skip_below_compression_ratio=lambda wildcards: code_prefilter(wildcards.source),
        thresholds=lambda wildcards: get_stage0_thresholds(wildcards.source),
    script:
        "../scripts/stage0.py"


# The subject filter measured (peS2o): normalize keeps a paper on the configured subjects by a keyword
# rule; here a sample drawn from the native files before that rule is labeled for topics by the
# labeling backend (the topic task's prompt, model and taxonomy), and subject_check applies the rule
# to the sample and scores it against those labels. Tuning the rule reruns normalize and
# subject_check only: the sample and its labels (the spend) stay.
rule subject_sample:
    input:
        manifest=f"{RESULTS}/downloads/{{source}}/MANIFEST.json",
    output:
        f"{RESULTS}/labels/subject_sample-{{source}}.parquet",
    log:
        f"{RESULTS}/logs/subject_sample/{{source}}.log",
    wildcard_constraints:
        source=alternation(SUBJECT_FILTERED_SOURCES),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        source="{source}",
        n=config["curation"]["subject_check"]["sample_docs"],
        max_files=config["curation"]["subject_check"]["max_files"],
        seed=config["seed"],
    script:
        "../scripts/subject_sample.py"


rule label_subjects:
    input:
        sample=f"{RESULTS}/labels/subject_sample-{{source}}.parquet",
    output:
        labels=f"{RESULTS}/labels/subject_topics-{{source}}.parquet",
        report=f"{RESULTS}/labels/subject_topics-{{source}}.report.json",
    log:
        f"{RESULTS}/logs/label_subjects/{{source}}.log",
    wildcard_constraints:
        source=alternation(SUBJECT_FILTERED_SOURCES),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources(
            "cpu", internet=NEEDS_INTERNET["label_subjects"], runtime=label_runtime()
        ),
    params:
        task="topic",
        source="{source}",
        labels=labeler_config(),
        # As rule label's: the OpenAI backends' manifest or cache, kept across a failed job.
        work_dir=lambda wildcards: f"{RESULTS}/labels/subject_topics-{wildcards.source}.work",
    script:
        "../scripts/label.py"


rule subject_check:
    input:
        sample=f"{RESULTS}/labels/subject_sample-{{source}}.parquet",
        labels=f"{RESULTS}/labels/subject_topics-{{source}}.parquet",
        label_report=f"{RESULTS}/labels/subject_topics-{{source}}.report.json",
    output:
        json=f"{RESULTS}/curation/subject_check/{{source}}.json",
        csv=report(
            f"{RESULTS}/curation/subject_check/{{source}}.csv",
            caption="../report/subject_check.rst",
            category="3. Curation",
            subcategory="Subject filter",
        ),
    log:
        f"{RESULTS}/logs/subject_check/{{source}}.log",
    wildcard_constraints:
        source=alternation(SUBJECT_FILTERED_SOURCES),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        source="{source}",
        subject_filter=source_value("subject_filter"),
    script:
        "../scripts/subject_check.py"


rule signatures:
    input:
        f"{RESULTS}/raw/{{source}}/part-{{part}}.parquet",
    output:
        signatures=f"{RESULTS}/minhash/{{source}}/part-{{part}}.npy",
        exact=f"{RESULTS}/minhash/{{source}}/part-{{part}}.exact.npy",
    log:
        f"{RESULTS}/logs/signatures/{{source}}/part-{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/signatures/{{source}}/part-{{part}}.tsv"
    wildcard_constraints:
        source=alternation(CURATED_SOURCES),
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
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
        tokens=f"{RESULTS}/tokens/raw/{{source}}/part-{{part}}.parquet",
        stage0=f"{RESULTS}/stage0/{{source}}/report.json",
    output:
        part=f"{RESULTS}/filtered/{{source}}/part-{{part}}.parquet",
        stats=f"{RESULTS}/filtered/{{source}}/part-{{part}}.stats.json",
    log:
        f"{RESULTS}/logs/filter/{{source}}/part-{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/filter/{{source}}/part-{{part}}.tsv"
    wildcard_constraints:
        source=alternation(CURATED_SOURCES),
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        source="{source}",
        policy=lambda wildcards: config["curation"][wildcards.source],
        topics=topic_names(),
        skip_below_compression_ratio=lambda wildcards: code_prefilter(wildcards.source),
    script:
        "../scripts/filter.py"


# Dedup and select join all parts of a source, so each is one job per source with one output per
# part; the number of parts differs per source, hence one rule per curated source.
for curated_source in CURATED_SOURCES:

    rule:
        name:
            f"dedup_{curated_source}"
        input:
            filtered=get_source_parts("filtered", curated_source),
            raw=get_source_parts("raw", curated_source),
            signatures=[
                f"{RESULTS}/minhash/{curated_source}/part-{k}.npy"
                for k in parts(curated_source)
            ],
            exact=[
                f"{RESULTS}/minhash/{curated_source}/part-{k}.exact.npy"
                for k in parts(curated_source)
            ],
        output:
            decisions=get_source_parts("dedup", curated_source),
            stats=f"{RESULTS}/dedup/{curated_source}/stats.json",
        log:
            f"{RESULTS}/logs/dedup/{curated_source}.log",
        benchmark:
            f"{RESULTS}/benchmarks/dedup/{curated_source}.tsv"
        priority: CURATION_PRIORITY
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            **job_resources("cpu"),
        params:
            num_perm=config["curation"]["dedup"]["num_perm"],
            threshold=config["curation"]["dedup"]["jaccard_threshold"],
            partition_mb=config["curation"]["dedup"]["partition_mb"],
        script:
            "../scripts/dedup.py"

    rule:
        name:
            f"select_{curated_source}"
        input:
            filtered=get_source_parts("filtered", curated_source),
            dedup=get_source_parts("dedup", curated_source),
        output:
            parts=get_source_parts("curated", curated_source),
            stats=f"{RESULTS}/curated/{curated_source}/select.stats.json",
        log:
            f"{RESULTS}/logs/select/{curated_source}.log",
        benchmark:
            f"{RESULTS}/benchmarks/select/{curated_source}.tsv"
        priority: CURATION_PRIORITY
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            **job_resources("cpu"),
        params:
            source=curated_source,
            target_tokens=curated_budget(curated_source),
            target_shares=target_shares(curated_source),
        script:
            "../scripts/select.py"


rule curation_yield:
    input:
        filter_stats=[
            f"{RESULTS}/filtered/{s}/part-{k}.stats.json"
            for s in CURATED_SOURCES
            for k in parts(s)
        ],
        dedup_stats=[f"{RESULTS}/dedup/{s}/stats.json" for s in CURATED_SOURCES],
        select_stats=[
            f"{RESULTS}/curated/{s}/select.stats.json" for s in CURATED_SOURCES
        ],
        # StackExchange's normalize stats: its per-site kept and dropped counts.
        site_stats=[
            f"{RESULTS}/raw/stackexchange/part-{k}.stats.json"
            for k in (parts("stackexchange") if "stackexchange" in SOURCES else [])
        ],
    output:
        csv=report(
            f"{RESULTS}/curation/yield.csv",
            caption="../report/curation_yield.rst",
            category="3. Curation",
            subcategory="Yield",
        ),
        png=report(
            f"{RESULTS}/curation/yield_funnel.png",
            caption="../report/curation_yield.rst",
            category="3. Curation",
            subcategory="Yield",
        ),
    log:
        f"{RESULTS}/logs/curation_yield.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        sources=CURATED_SOURCES,
        parts={s: len(parts(s)) for s in CURATED_SOURCES},
    script:
        "../scripts/curation_yield.py"
