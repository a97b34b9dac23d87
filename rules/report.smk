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
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
    params:
        # The plan is a function of the whole config (mix, model, schedule, arms, prices).
        config=config,
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
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
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
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
    script:
        "../scripts/plot_deltas.py"
