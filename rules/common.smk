# Shared by all the rule files. Run-wide names and wildcard constraints, config values for
# `params:` and `resources:` (plain names), and input functions (`get_*`: the files a rule reads).
#
# Everything a rule's output depends on reaches it through `input:` or `params:` built here, so
# Snakemake's rerun triggers (mtime, params, code) see exactly what a config change invalidates:
# a new filter threshold changes the filter rule's params and nothing upstream of it.

from trellis.core.tasks import DOMAIN_SOURCE, TASK_NAMES, build_tasks, tasks_for_source
from trellis.evaluate.bfcl import summary_sections as bfcl_summary_sections
from trellis.labels.settings import labels_params
from trellis.train.baselines import resolve_revision

RESULTS = f"results/{config['run']}"
SOURCES = list(config["sources"])
CURATED_SOURCES = [s for s in DOMAIN_SOURCE.values() if s in SOURCES]
TASKS = build_tasks(config)
ARMS = list(config["arms"])
PRETRAIN_ARMS = [a for a, spec in config["arms"].items() if spec["kind"] == "pretrain"]
BASELINE_ARMS = [a for a, spec in config["arms"].items() if spec["kind"] == "baseline"]
STAGES = list(config["evaluate"]["stages"])
# Generation benchmarks run together in one `evaluate` job per arm and stage (one model load):
# the structured-output ones, BFCL's categories (with BFCL's summary when the categories of one of
# its sections are all there) and the code ones (set to null in the config: not run). lm-eval
# tasks likewise run in one `evaluate_harness` job.
BENCHMARKS = ["json_schema", "extraction", "classification"] + [
    b for b in ("humaneval", "mbpp") if config["evaluate"][b] is not None
]
BFCL_CATEGORIES = list(config["evaluate"]["bfcl"]["categories"])
BFCL_BENCHMARKS = [f"bfcl_{c}" for c in BFCL_CATEGORIES] + (
    ["bfcl_summary"] if bfcl_summary_sections(BFCL_CATEGORIES) else []
)
GENERATION_RESULTS = BENCHMARKS + BFCL_BENCHMARKS
HARNESS_TASKS = list(config["evaluate"]["harness"]["tasks"])


def alternation(names):
    """A wildcard regex matching exactly these names (and nothing when the list is empty)."""
    return "|".join(names) if names else "(?!)"


wildcard_constraints:
    source=alternation(SOURCES),
    part=r"\d+",
    task=alternation(TASK_NAMES),
    domain=alternation(DOMAIN_SOURCE),
    arm=alternation(ARMS),
    stage=alternation(STAGES),


# ---- config values (params, resources): lookups repeated across rules ------------------------


def res(family, key):
    return config["resources"][family][key]


def parts(source):
    return range(config["sources"][source]["parts"])


def source_value(key):
    """A params function: the `sources.<source>.<key>` of the job's source (None when unset)."""
    return lambda wildcards: config["sources"][wildcards.source].get(key)


def acquire_spec(source):
    """What the acquire job needs for the configured backend (and nothing it does not use)."""
    spec = config["sources"][source]
    backend = config["acquire"]["backend"]
    if backend == "demo":
        return {
            "backend": backend,
            "demo_docs": spec["demo_docs"],
            "n_files": spec["parts"],
            "seed": config["seed"],
            "topics": config["labels"]["topics"],
        }
    return {"backend": backend, **spec["hf"]}


def labeler_config():
    """What decides the labels (backend, model, taxonomy, request settings); see labels_params.

    Sample sizes reach label_sample only; the OpenAI backends' operational sections (batch, chat,
    prices) are read by the script from the config, so tuning them reruns nothing.
    """
    return labels_params(config["labels"])


def code_prefilter(source):
    """The compression ratio below which scoring skips a document (StarCoderData only)."""
    if source != "starcoderdata":
        return None
    return config["scoring"]["skip_below_compression_ratio"]


def stage0_settings(source):
    """Stage 0's settings, with only this source's accepted checks (another source's are not its input)."""
    settings = {k: v for k, v in config["curation"]["stage0"].items() if k != "accept"}
    accept = (config["curation"]["stage0"]["accept"] or {}).get(source) or {}
    return {**settings, "accept": {source: dict(accept)}}


def topic_names():
    return [t["name"] for t in config["labels"]["topics"]]


def curated_budget(source):
    """The token target of a source's selection: its curated mix components' budget (per arm)."""
    budgets = [
        int(c["tokens"])
        for c in config["mix"]["components"].values()
        if c["source"] == source and c["curated"]
    ]
    return sum(budgets) if budgets else None


def target_shares(source):
    cfg = config["curation"][source]
    key = "target_topic_shares" if source == "fineweb_edu" else "target_language_shares"
    return dict(cfg[key] or {})


def arm_is_curated(arm):
    return bool(config["arms"][arm].get("curated", False))


def mix_components(arm):
    """Per mix component: its source, budget, whether to upsample a short source, and which stage
    of that source this arm reads."""
    curated_arm = arm_is_curated(arm)
    components = []
    for name, comp in config["mix"]["components"].items():
        stage = "curated" if (curated_arm and comp["curated"]) else "raw"
        components.append(
            {
                "name": name,
                "source": comp["source"],
                "budget": int(comp["tokens"]),
                "upsample": bool(comp.get("upsample", False)),
                "stage": stage,
                "token_paths": [
                    f"{RESULTS}/tokens/{stage}/{comp['source']}/part-{k}.parquet"
                    for k in parts(comp["source"])
                ],
            }
        )
    return components


def upload_spec():
    """mix.upload, checked: the upload rules refuse to run unless it is enabled with a repo."""
    spec = config["mix"]["upload"]
    if not spec["enabled"]:
        raise ValueError(
            "mix.upload.enabled is false in the config: set it (and mix.upload.repo) to upload shards"
        )
    if not spec["repo"]:
        raise ValueError(
            "mix.upload.repo is not set: name the Hugging Face dataset repo (owner/name)"
        )
    return spec


def pretrain_launch_resources():
    """GPUs (all nodes) and, for more than one process, what the slurm executor needs to launch them.

    resources.pretrain.gpu is GPUs per node: 0 (CPU) or pretrain.devices. With several processes
    the job runs on its nodes without the executor's `srun -n1` wrapper (mpi), and the pretrain
    script starts one process per GPU with srun (torchrun outside SLURM; trellis.train.pretrain.launch).
    """
    pretrain, per_node = config["pretrain"], res("pretrain", "gpu")
    devices, nodes = int(pretrain["devices"]), int(pretrain["num_nodes"])
    if per_node not in (0, devices):
        raise ValueError(
            f"resources.pretrain.gpu ({per_node}) must be 0 (CPU) or pretrain.devices ({devices})"
        )
    launch = {"gpu": per_node * nodes}
    if devices * nodes > 1:
        launch |= {
            "nodes": nodes,
            "tasks": devices * nodes,
            "tasks_per_gpu": 1,
            "mpi": "srun",
        }
    return launch


def baseline_revision(wildcards):
    """The hub revision of a baseline arm, compute-matched/final resolved from the token budget."""
    spec = config["arms"][wildcards.arm]
    return resolve_revision(spec["revision"], int(config["pretrain"]["max_tokens"]))


def public_posttrain_value(key):
    """A params function: the `posttrain.public.<name>.<key>` of the job's public set."""
    return lambda wildcards: config["posttrain"]["public"][wildcards.name][key]


def generation_benchmarks():
    """Benchmark -> config section, in the order the evaluate job runs them."""
    return {b: config["evaluate"][b] for b in BENCHMARKS + ["bfcl"]}


# ---- input functions (get_*): the files a rule reads -----------------------------------------


def model_dir(arm, stage):
    return f"{RESULTS}/models/{arm}/{stage}"


def get_source_parts(stage, source):
    """Parquet parts of a source at a stage: raw, filtered or curated."""
    return [f"{RESULTS}/{stage}/{source}/part-{k}.parquet" for k in parts(source)]


def get_classifier_tokenizer():
    """The demo trains classifiers from scratch on the demo tokenizer; a base model brings its own."""
    return [] if config["classifiers"]["base_model"] else [f"{RESULTS}/tokenizer"]


def get_classifier_dirs(source):
    return [f"{RESULTS}/classifiers/{t}/model" for t in tasks_for_source(source)]


def get_tokenizer_training_parts():
    if config["tokenizer"]["kind"] != "train":
        return []
    return [p for s in SOURCES for p in get_source_parts("raw", s)]


def get_mix_tokens(wildcards):
    return sorted({p for c in mix_components(wildcards.arm) for p in c["token_paths"]})


def get_upload_targets(wildcards):
    """`snakemake upload`: every pretrain arm's upload record (mix.upload must be enabled)."""
    upload_spec()
    return [f"{RESULTS}/shards/{arm}/upload.json" for arm in PRETRAIN_ARMS]


def get_evaluate_inputs(wildcards):
    inputs = {
        "model": model_dir(wildcards.arm, wildcards.stage),
        "suite": f"{RESULTS}/suites/json_schema.jsonl",
    }
    if "mbpp" in BENCHMARKS:
        inputs["data"] = f"{RESULTS}/downloads/eval/mbpp/MANIFEST.json"
    return inputs


def get_harness_inputs(wildcards):
    inputs = {"model": model_dir(wildcards.arm, wildcards.stage)}
    if config["evaluate"]["harness"]["demo_tasks"] is not None:
        inputs["tasks"] = f"{RESULTS}/suites/lm_eval"
    return inputs


def get_harness_result_files(arm, stage):
    return [f"{RESULTS}/eval/{arm}/{stage}/lm_{task}.json" for task in HARNESS_TASKS]


def get_result_files():
    return [
        f"{RESULTS}/eval/{arm}/{stage}/{bench}.json"
        for arm in ARMS
        for stage in STAGES
        for bench in GENERATION_RESULTS
    ] + [
        f
        for arm in ARMS
        for stage in STAGES
        for f in get_harness_result_files(arm, stage)
    ]


def get_headline_outputs():
    """The default target's inputs: the tables and every figure of the report."""
    return [
        f"{RESULTS}/tables/headline.csv",
        f"{RESULTS}/tables/headline.md",
        f"{RESULTS}/tables/deltas.png",
        f"{RESULTS}/plan/plan.md",
        f"{RESULTS}/config.yaml",
        f"{RESULTS}/classifiers/metrics.csv",
        f"{RESULTS}/curation/yield.csv",
        f"{RESULTS}/plots/pretrain_loss.png",
    ]
