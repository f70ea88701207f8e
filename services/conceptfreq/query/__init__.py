"""Frequency queries: the FrequencyService and the `query` / `top` commands share this package."""
