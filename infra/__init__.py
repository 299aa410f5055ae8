"""Deploy time: SAM template, sample events, local Lambda emulation, deploy, MLflow plugin."""
