"""The steps of an agent's flow and what they use: artifacts, prompts, model
providers, builders and storage. Nothing here imports the root package's modules
(`agentflows.loader`, `agentflows.compiler`, `agentflows.router`, …): they build on this."""
