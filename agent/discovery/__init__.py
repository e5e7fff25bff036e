"""Discovery of classified files at rest on unclassified hosts (docs/posture.md)."""
