"""The paper's evaluation: ablation (Table 1), robustness (Table 2), baselines, sweeps and plots."""
