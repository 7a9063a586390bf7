"""bankq's benchmark: `python -m bench` measures baselines and bankq in one run and prints the ratios."""
