"""The KL-divergence gate over all models: references, weights, calibration, the stage."""
