"""pytest plugin for ptstub (placeholder until the stress harness lands)."""
