"""xrd-agent: sim_devices."""
