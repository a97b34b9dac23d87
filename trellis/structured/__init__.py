"""What post-training data and evaluation share: the pools of schemas and functions and the prompts built from them."""
