"""Built-in backbone, augmenter and head plugins, one per file."""
