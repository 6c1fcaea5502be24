"""xrd-agent: plans."""
