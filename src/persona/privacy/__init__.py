"""Differential privacy for persona (placeholder while building)."""
