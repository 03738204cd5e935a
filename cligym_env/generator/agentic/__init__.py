"""Agentic environment inversion: an LLM proposes a breakage and an agent carries it out, guided by feedback."""
