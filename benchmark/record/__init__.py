"""What a run leaves behind and what it is keyed by: the resolved identity, the results store, the run
directory's header and the receipt.
"""
