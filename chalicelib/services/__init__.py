"""Orchestration: a service receives its adapters, reads a snapshot, plans with rules, applies."""
