"""MEML-GRPO: heterogeneous multi-expert mutual learning on top of GRPO (arXiv 2508.09670)."""

__version__ = "0.1.0"
