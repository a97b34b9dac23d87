"""Rule family ``train``.

LitGPT pretraining, conversion to Hugging Face, baselines, compute accounting, SFT and DPO.
"""
