"""Rule convert: a LitGPT checkpoint (final/lit_model.pth) -> Hugging Face LlamaForCausalLM dir.

Fails (and writes nothing) when the converted model's logits differ from LitGPT's by more than
trellis.train.convert.PARITY_TOLERANCE; the figure is recorded in <model>/conversion.json.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.core.logs import setup_logging
from trellis.train.convert import convert_to_hf

log = setup_logging(snakemake.log[0])
start = time.monotonic()
checkpoint = Path(snakemake.input.checkpoint)
tokenizer = Path(snakemake.input.tokenizer)
out_dir = Path(snakemake.output.model)
log.info("converting %s (tokenizer %s) -> %s", checkpoint, tokenizer, out_dir)
report = convert_to_hf(checkpoint.parent, tokenizer, out_dir)
log.info(
    "wrote %s: %s parameters (%s), max |logit diff| vs LitGPT %.3g (tolerance %.0e)",
    out_dir,
    f"{report['parameters']:,}",
    report["dtype"],
    report["max_abs_logit_diff"],
    report["tolerance"],
)
log.info("done in %.1fs", time.monotonic() - start)
