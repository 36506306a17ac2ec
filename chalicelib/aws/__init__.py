"""Adapters of AWS services: each wraps an injected botocore client and speaks domain types."""
