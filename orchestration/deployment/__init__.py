"""Deployment operations: blocks, code bundle, deployments, automations, worker and triggering runs."""
