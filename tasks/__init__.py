"""The steps of an agent's flow and what they use: artifacts, prompts, model
providers, builders and storage. Nothing here imports `flows`."""
