"""What a user writes and what is installed: the suite file (typed), its JSON Schema, the plugin registry,
and the wording of messages about them.
"""
