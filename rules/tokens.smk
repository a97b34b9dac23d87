# Stage 6: the tokenizer, token ids per part (raw and curated), and per arm the mix: exact token
# budgets per component (sampled, upsampled or a reported shortfall), packed with EOS into
# fixed-length sequences, globally shuffled in bounded memory, written as TKDS v1 shards with a
# manifest and the mix table. `snakemake upload` sends the shard sets to a Hugging Face dataset
# repo (mix.upload; off in both configs).


rule train_tokenizer:
    input:
        parts=get_tokenizer_training_parts(),
    output:
        directory(f"{RESULTS}/tokenizer"),
    log:
        f"{RESULTS}/logs/train_tokenizer.log",
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["train_tokenizer"]),
    params:
        kind=config["tokenizer"]["kind"],
        vocab_size=config["tokenizer"]["vocab_size"],
        pretrained=config["tokenizer"]["pretrained"],
        docs_per_source=config["tokenizer"]["train_docs_per_source"],
        seed=config["seed"],
    script:
        "../scripts/train_tokenizer.py"


rule tokenize:
    input:
        tokenizer=f"{RESULTS}/tokenizer",
        part=f"{RESULTS}/{{stage}}/{{source}}/part-{{part}}.parquet",
    output:
        f"{RESULTS}/tokens/{{stage}}/{{source}}/part-{{part}}.parquet",
    log:
        f"{RESULTS}/logs/tokenize/{{stage}}/{{source}}/part-{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenize/{{stage}}/{{source}}/part-{{part}}.tsv"
    wildcard_constraints:
        stage="raw|curated",
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    # tokenizers encodes each batch on this many threads (RAYON_NUM_THREADS, set by the script).
    threads: res("cpu", "threads")
    resources:
        **job_resources("cpu"),
    script:
        "../scripts/tokenize.py"


rule mix:
    input:
        tokenizer=f"{RESULTS}/tokenizer",
        tokens=get_mix_tokens,
    output:
        manifest=f"{RESULTS}/shards/{{arm}}/manifest.json",
        table=report(
            f"{RESULTS}/shards/{{arm}}/mix.csv",
            caption="../report/mix.rst",
            category="4. Pretraining",
            labels={"table": "realized token mix", "arm": "{arm}"},
        ),
    log:
        f"{RESULTS}/logs/mix/{{arm}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mix/{{arm}}.tsv"
    wildcard_constraints:
        arm=alternation(PRETRAIN_ARMS),
    priority: CURATION_PRIORITY
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        components=lambda wildcards: mix_components(wildcards.arm),
        context_length=config["mix"]["context_length"],
        vocab_size=config["tokenizer"]["vocab_size"],
        sequences_per_shard=config["mix"]["sequences_per_shard"],
        shuffle_buffer_mb=config["mix"]["shuffle_buffer_mb"],
        seed=config["seed"],
    script:
        "../scripts/mix.py"


# `snakemake upload`: every pretrain arm's shard set (mix.upload.enabled must be true).
rule upload:
    input:
        get_upload_targets,


rule upload_shards:
    input:
        manifest=f"{RESULTS}/shards/{{arm}}/manifest.json",
        table=f"{RESULTS}/shards/{{arm}}/mix.csv",
    output:
        f"{RESULTS}/shards/{{arm}}/upload.json",
    log:
        f"{RESULTS}/logs/upload/{{arm}}.log",
    wildcard_constraints:
        arm=alternation(PRETRAIN_ARMS),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **job_resources("cpu", internet=NEEDS_INTERNET["upload_shards"]),
    params:
        repo=lambda wildcards: upload_spec()["repo"],
        private=lambda wildcards: upload_spec()["private"],
        revision=lambda wildcards: upload_spec()["revision"],
    script:
        "../scripts/upload_shards.py"
