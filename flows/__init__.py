"""xrd-agent: flows."""
