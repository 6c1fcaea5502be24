"""xrd-agent: agent."""
