"""Deploy-time registration: work pools, blocks, the code bundle, deployments and automations."""
