"""What agent and collector share: event schema and catalogue, levels, the policy table,
configuration loading, canonical JSON and hashing, keys. Imports nothing from either side."""
__version__ = "0.1.0"
