"""Prefect Block types of agentflows (model provider and content store settings)."""
