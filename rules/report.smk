# What a researcher sees: the plan before spending, the config the run used, and the thesis as a
# plot (curated minus control, per stage). `snakemake --report report.html` gathers these with
# every other output declared with report() into one self-contained page.


rule plan:
    output:
        md=f"{RESULTS}/plan/plan.md",
        json=f"{RESULTS}/plan/plan.json",
        mix=report(
            f"{RESULTS}/plan/mix.csv",
            caption="../report/plan_mix.rst",
            category="1. Plan",
            labels={"table": "token mix"},
        ),
        compute=report(
            f"{RESULTS}/plan/compute.csv",
            caption="../report/plan_compute.rst",
            category="1. Plan",
            labels={"table": "compute per arm"},
        ),
    log:
        f"{RESULTS}/logs/plan.log",
    # The evaluate env: lm-eval's task index names the datasets the harness tasks download.
    conda:
        "../envs/evaluate.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        # The plan is a function of the whole config (mix, model, schedule, arms, prices), but not
        # of where a cluster runs the jobs.
        config={k: v for k, v in config.items() if k != "slurm"},
    script:
        "../scripts/plan.py"


rule config_snapshot:
    output:
        report(
            f"{RESULTS}/config.yaml",
            caption="../report/config.rst",
            category="1. Plan",
            labels={"table": "configuration"},
        ),
    log:
        f"{RESULTS}/logs/config_snapshot.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        config=config,
    script:
        "../scripts/config_snapshot.py"


rule plot_deltas:
    input:
        f"{RESULTS}/tables/headline.csv",
    output:
        report(
            f"{RESULTS}/tables/deltas.png",
            caption="../report/deltas.rst",
            category="5. Benchmarks",
            labels={"figure": "curated minus control"},
        ),
    log:
        f"{RESULTS}/logs/plot_deltas.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    script:
        "../scripts/plot_deltas.py"


# Stage 10: the headline table (arm x stage x benchmark), built only from the result files.


rule tables:
    input:
        results=get_result_files(),
        # Study: lm-eval reproduces Pythia-410M-deduped's published numbers (none in the demo).
        validation=HARNESS_VALIDATION,
        # Study: BFCL's prompt mode reproduces Qwen3-0.6B's published leaderboard numbers.
        bfcl_validation=BFCL_VALIDATION,
    output:
        csv=report(
            f"{RESULTS}/tables/headline.csv",
            caption="../report/headline.rst",
            category="5. Benchmarks",
            labels={"table": "headline results"},
        ),
        md=f"{RESULTS}/tables/headline.md",
    log:
        f"{RESULTS}/logs/tables.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        control_arm=config["evaluate"]["control_arm"],
    script:
        "../scripts/tables.py"


rule plot_pretrain:
    input:
        metrics=expand(f"{RESULTS}/checkpoints/{{arm}}/metrics.csv", arm=PRETRAIN_ARMS),
    output:
        png=report(
            f"{RESULTS}/plots/pretrain_loss.png",
            caption="../report/pretrain_loss.rst",
            category="4. Pretraining",
            labels={"figure": "loss and throughput"},
        ),
    log:
        f"{RESULTS}/logs/plot_pretrain.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **job_resources("cpu"),
    params:
        arms=PRETRAIN_ARMS,
    script:
        "../scripts/plot_pretrain.py"
