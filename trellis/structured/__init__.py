"""What post-training data and evaluation share: the pools of schemas and functions, the prompts
built from them, the generated SFT/DPO rows, and the rule that training and evaluation data stay
disjoint."""
