"""The Prefect flows and tasks that put models/ functions in order, with caching, locks and reports."""
