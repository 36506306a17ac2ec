"""Deployment tooling: template builder, stage configurator, parameter table (never deployed)."""
