"""Shared by every stage: settings, names and defaults, errors, storage, periods, contracts."""
