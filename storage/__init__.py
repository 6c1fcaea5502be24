"""xrd-agent: storage (tiled catalog, labels)."""
