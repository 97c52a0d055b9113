"""planner: plan, deploy and diagnose local LLM serving with llama.cpp."""

__version__ = "0.1.0"
