"""Generated from proto/conceptfreq/v1 by `make proto`; do not edit."""
