"""Built-in dataset plugins (importable as ``skinbench.datasets``; never shadows Hugging Face ``datasets``)."""
