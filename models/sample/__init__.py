"""The sample stage: a synthetic data set with every header era, date format and dirty-row kind."""
