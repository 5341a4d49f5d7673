"""The agent definitions shipped with agentflows: YAML, prompt templates and layouts.

Data, not code: `agentflows.catalog` reads this folder with `importlib.resources`,
so it is found the same way from a wheel, an editable install and a worker's clone.
"""
