"""Rule family ``report``: the plan, the headline table, the plots and the config reference."""
