# Stage 10: the headline table (arm x stage x benchmark), built only from the result files.


rule tables:
    input:
        results=result_files(),
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
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
    params:
        control_arm=config["evaluate"]["control_arm"],
    script:
        "../scripts/tables.py"
