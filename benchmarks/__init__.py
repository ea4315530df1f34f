"""Scripts that reproduce the paper's tables and figures and measure planning speed (run each as a script)."""
