"""Drift: how far a night's rows are from the data the champion learned on, field by field.

statistics.py  the object box's image statistics (brightness, contrast, sharpness, position...)
reference.py   the reference histograms (training rows) and the alert thresholds, calibrated
               on held-out clean rows at the night's own size
compare.py     one night against the reference: per OCR field and image statistic, ranked
page.py        the self-contained HTML report; history.py the report across nights
stage.py       `oanet drift` and the pipeline's `drift` stage
"""
