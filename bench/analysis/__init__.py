"""What runs say: compare (regression verdicts), guideline summaries, fits (R^2, Pareto)."""
