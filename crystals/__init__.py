"""xrd-agent: crystal structures and powder-diffraction peak lists (no torch, no bluesky)."""
