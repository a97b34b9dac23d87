# Shared by all the rule files. Run-wide names and wildcard constraints, config values for
# `params:` and `resources:` (plain names), and input functions (`get_*`: the files a rule reads).
#
# Everything a rule's output depends on reaches it through `input:` or `params:` built here, so
# Snakemake's rerun triggers (mtime, params, code) see exactly what a config change invalidates:
# a new filter threshold changes the filter rule's params and nothing upstream of it.

from trellis.classifiers.base import BASE_MODEL_REVISION
from trellis.core.tasks import DOMAIN_SOURCE, TASK_NAMES, build_tasks, tasks_for_source
from trellis.curate.subject_check import check_subject_filters
from trellis.evaluate.bfcl import result_names as bfcl_result_names
from trellis.evaluate.harness import (
    PUBLISHED_MODEL,
    PYTHIA_410M_DEDUPED_ZERO_SHOT,
    VALIDATION_TOLERANCE,
)
from trellis.labels.settings import labels_params
from trellis.train.baselines import final_baseline_arm, resolve_revision

RESULTS = f"results/{config['run']}"
SOURCES = list(config["sources"])
CURATED_SOURCES = [s for s in DOMAIN_SOURCE.values() if s in SOURCES]
# Sources that normalize keeps on configured subjects (peS2o): the subject check measures each.
SUBJECT_FILTERED_SOURCES = [
    s for s in SOURCES if config["sources"][s].get("subject_filter")
]
TASKS = build_tasks(config)
# A subject the labeler has no topic for could never be measured: an error before any job runs.
check_subject_filters(config["sources"], TASKS["topic"].labels)
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
# BFCL: per mode (evaluate.bfcl.modes), one result per category and the mode's summary.
BFCL_BENCHMARKS = bfcl_result_names(config["evaluate"]["bfcl"])
GENERATION_RESULTS = BENCHMARKS + BFCL_BENCHMARKS
# The LLM judge of the extraction outputs (evaluate.extraction.judge; null, the demo: no judge):
# one judge_extraction job per arm and stage, after its evaluate job, with its own result file.
EXTRACTION_JUDGE = config["evaluate"]["extraction"].get("judge")
JUDGED_RESULTS = ["extraction_judged"] if EXTRACTION_JUDGE else []
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


# Which rules' jobs reach the internet (the Hugging Face hub, the OpenAI API) with this config; each
# passes its entry to job_resources(internet=...). Many clusters give compute nodes no route out,
# so on SLURM these jobs run on the host that runs snakemake (the Snakefile makes them localrules)
# unless slurm.partitions.internet names a partition that has one.
NEEDS_INTERNET = {
    "acquire": config["acquire"]["backend"] != "demo",
    "label": config["labels"]["backend"] != "offline",
    "label_subjects": config["labels"]["backend"] != "offline",
    "train_tokenizer": config["tokenizer"]["kind"] == "pretrained",
    "fetch_classifier_base": True,
    "fetch_baseline": True,
    "fetch_posttrain_data": True,
    "fetch_eval_data": True,
    "fetch_harness_data": True,
    "fetch_bfcl_reference": True,
    "upload_shards": True,
    "judge_extraction": bool(EXTRACTION_JUDGE),
}
INTERNET_RULES = [rule for rule, needs in NEEDS_INTERNET.items() if needs]
INTERNET_JOBS_RUN_LOCALLY = config["slurm"]["partitions"]["internet"] == "local"

# Jobs on the way to the models run before evaluation jobs ready beside them: evaluations are
# leaves that fill any free core later, while the curated arm's chain (sources and tokenizer ->
# classifiers -> Stage 0 -> scores -> curation -> mix -> pretrain -> SFT -> DPO) is the run's
# longest path. The sources, labels, tokenizer, classifiers, curation and the post-training data
# come first (the uncurated arm needs no labels, classifiers or curation and would otherwise hold
# the cores), then training. Without them the demo ran the uncurated arm's post-training and
# evaluations first and left the curated chain, and one core, waiting at the end; without the
# tokenizer among them, every classifier waited for it behind the early small jobs.
CURATION_PRIORITY = 20
TRAINING_PRIORITY = 10
# Among the evaluations, a model's generation benchmarks (its longest job) start before the
# shorter ones ready beside them, which then fill the other core while the last long one runs:
# otherwise the run ended with the last model's evaluate job alone on one core.
LONG_EVALUATION_PRIORITY = 1


def job_resources(family, *, gpu=False, internet=False, **overrides):
    """What a job asks the scheduler for, and where SLURM runs it.

    Memory and runtime come from resources.<family> (overrides win), GPUs from it too when the rule
    can use one (gpu=True). The partition follows from those resources, never from a list of rule
    names: a job that asks for a GPU goes to slurm.partitions.gpu, one that needs the internet to
    slurm.partitions.internet (when it names a partition), every other to slurm.partitions.cpu.
    Account and QoS, when set, go with every job. The local executor ignores the slurm_* keys.
    """
    spec, slurm = config["resources"][family], config["slurm"]
    resources = {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"]}
    if gpu:
        resources["gpu"] = spec["gpu"]
    if internet:
        resources["internet"] = 1
    resources |= overrides
    partitions = slurm["partitions"]
    if resources.get("gpu", 0) > 0:
        resources["slurm_partition"] = partitions["gpu"]
    elif internet:
        if not INTERNET_JOBS_RUN_LOCALLY:  # local: a localrule, no partition
            resources["slurm_partition"] = partitions["internet"] or partitions["cpu"]
    else:
        resources["slurm_partition"] = partitions["cpu"]
    if slurm["account"]:
        resources["slurm_account"] = slurm["account"]
    if slurm["qos"]:
        resources["qos"] = slurm["qos"]
    return resources


def label_runtime():
    """Minutes a label job may take: with the Batch API, every round's full completion window
    plus the longest wait for room in the organisation's batch queue.

    Each round waits up to labels.batch.completion_window for the API, up to max_rounds rounds run,
    and a batch may wait up to labels.batch.queue_wait_hours for the queue (shared by the five
    label jobs) before the job gives up, so the job's time limit covers them all (plus an hour for
    uploads and downloads): no wait outlives the job doing it, and no human has to rerun it.
    """
    if config["labels"]["backend"] != "openai-batch":
        return res("cpu", "runtime")
    batch = config["labels"]["batch"]
    window_hours = int(str(batch["completion_window"]).rstrip("h"))
    queue_hours = float(batch.get("queue_wait_hours", 48))
    hours = window_hours * int(batch["max_rounds"]) + queue_hours + 1
    return max(res("cpu", "runtime"), int(60 * hours))


def judge_runtime():
    """Minutes a judge job may take: like a label job's (label_runtime), every round's completion
    window plus the longest wait for the batch queue, with the judge's batch settings.
    """
    if not EXTRACTION_JUDGE:
        return res("cpu", "runtime")
    batch = {**config["labels"]["batch"], **(EXTRACTION_JUDGE.get("batch") or {})}
    window_hours = int(str(batch["completion_window"]).rstrip("h"))
    queue_hours = float(batch.get("queue_wait_hours", 48))
    hours = window_hours * int(batch["max_rounds"]) + queue_hours + 1
    return max(res("cpu", "runtime"), int(60 * hours))


def extraction_judge_params(wildcards):
    """What decides the verdicts (trellis.evaluate.judge.judge_params); an error where the judge is off."""
    if not EXTRACTION_JUDGE:
        raise ValueError(
            "judge_extraction needs evaluate.extraction.judge (null in this config)"
        )
    from trellis.evaluate.judge import judge_params

    return judge_params(EXTRACTION_JUDGE, config["labels"])


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
    sections = {b: config["evaluate"][b] for b in BENCHMARKS + ["bfcl"]}
    # The judge is a job of its own: turning it on or off must not rerun the evaluate jobs.
    sections["extraction"] = {
        k: v for k, v in sections["extraction"].items() if k != "judge"
    }
    return sections


# ---- input functions (get_*): the files a rule reads -----------------------------------------


def model_dir(arm, stage):
    return f"{RESULTS}/models/{arm}/{stage}"


def get_source_parts(stage, source):
    """Parquet parts of a source at a stage: raw, filtered or curated."""
    return [f"{RESULTS}/{stage}/{source}/part-{k}.parquet" for k in parts(source)]


def get_classifier_tokenizer():
    """The demo trains classifiers from scratch on the demo tokenizer; a base model brings its own."""
    return [] if config["classifiers"]["base_model"] else [f"{RESULTS}/tokenizer"]


CLASSIFIER_BASE_DIR = f"{RESULTS}/downloads/models/classifier_base"


def get_classifier_base():
    """The base model as fetch_classifier_base downloaded it (none in the demo: from scratch)."""
    return [CLASSIFIER_BASE_DIR] if config["classifiers"]["base_model"] else []


def get_classifier_dirs(source):
    return [f"{RESULTS}/classifiers/{t}/model" for t in tasks_for_source(source)]


def get_stage0_thresholds(source):
    """The thresholds Stage 0 calibrates or checks, as stage0's params; FineWeb-Edu's topic ones.

    {"topic": "calibrated"} or {"topic": {topic: pinned threshold}}: a changed threshold reruns
    Stage 0 (a sample) and, through its report, the filter; never scoring (it reads the report as
    ancient). Config errors name the key (trellis.curate.filter.topic_thresholds).
    """
    if source != "fineweb_edu":
        return {}
    from trellis.curate.filter import topic_thresholds

    return {"topic": topic_thresholds(config["curation"]["fineweb_edu"], topic_names())}


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


HARNESS_DATA_MANIFEST = f"{RESULTS}/downloads/lm_eval/MANIFEST.json"


def get_harness_inputs(wildcards):
    """The model, and the tasks' data: the demo's local task files, or lm-eval's own tasks'
    datasets as fetch_harness_data cached them (the job then runs offline)."""
    inputs = {"model": model_dir(wildcards.arm, wildcards.stage)}
    if config["evaluate"]["harness"]["demo_tasks"] is not None:
        inputs["tasks"] = f"{RESULTS}/suites/lm_eval"
    else:
        inputs["data"] = HARNESS_DATA_MANIFEST
    return inputs


# The check of the harness against Pythia-410M-deduped's published zero-shot numbers (rule
# validate_harness) runs where the arms run lm-eval's own tasks (study), on the final
# Pythia-410M-deduped baseline arm, and the headline table waits for it. The demo (local tasks, no
# baselines) has no published numbers to check: no such job, and tables does not wait.
HARNESS_VALIDATION_ARM = (
    final_baseline_arm(
        config["arms"], PUBLISHED_MODEL, int(config["pretrain"]["max_tokens"])
    )
    if config["evaluate"]["harness"]["demo_tasks"] is None
    else None
)
HARNESS_VALIDATION = (
    [f"{RESULTS}/eval/harness_validation.json"] if HARNESS_VALIDATION_ARM else []
)


def get_harness_validation_inputs(wildcards):
    """validate_harness reads the baseline as fetch_baseline fetched it and the published tasks'
    data as fetch_harness_data cached it (offline)."""
    if HARNESS_VALIDATION_ARM is None:
        raise ValueError(
            "validate_harness needs lm-eval's own tasks (evaluate.harness.demo_tasks: null) and a "
            "baseline arm of EleutherAI/pythia-410m-deduped at its final revision in config.arms"
        )
    return {
        "model": model_dir(HARNESS_VALIDATION_ARM, "base"),
        "data": HARNESS_DATA_MANIFEST,
    }


# The check of BFCL's prompt mode against the leaderboard's published numbers of a hub model
# (rules fetch_bfcl_reference, validate_bfcl): where evaluate.bfcl.validation is set (study).
BFCL_VALIDATION_CFG = config["evaluate"]["bfcl"]["validation"]
BFCL_REFERENCE_DIR = f"{RESULTS}/downloads/models/bfcl_reference"
BFCL_VALIDATION = (
    [f"{RESULTS}/eval/bfcl_validation.json"] if BFCL_VALIDATION_CFG else []
)


def bfcl_validation_cfg(wildcards=None):
    """evaluate.bfcl.validation, or an error naming the key where it is null."""
    if not BFCL_VALIDATION_CFG:
        raise ValueError(
            "fetch_bfcl_reference and validate_bfcl need evaluate.bfcl.validation (null in this config)"
        )
    return BFCL_VALIDATION_CFG


def get_harness_result_files(arm, stage):
    return [f"{RESULTS}/eval/{arm}/{stage}/lm_{task}.json" for task in HARNESS_TASKS]


def get_result_files():
    return [
        f"{RESULTS}/eval/{arm}/{stage}/{bench}.json"
        for arm in ARMS
        for stage in STAGES
        for bench in GENERATION_RESULTS + JUDGED_RESULTS
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
        *expand(
            f"{RESULTS}/curation/subject_check/{{source}}.csv",
            source=SUBJECT_FILTERED_SOURCES,
        ),
    ]
