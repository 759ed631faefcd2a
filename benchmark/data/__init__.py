"""The data and its checks, before anything is computed: the preflight, the protocol (split, outer folds,
validation, seeds) and the joining of identical images into one patient.
"""
