"""xrd-agent: models."""
