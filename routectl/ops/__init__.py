"""The operator surface: probe and metrics serving, logs, `routectl plan` rendering, output columns."""
