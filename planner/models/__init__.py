"""Model facts: GGUF headers (local and remote), sources, the offline catalog and the quant table."""
