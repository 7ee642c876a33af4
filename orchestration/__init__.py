"""Prefect 3 wiring of the pipeline: flows over ``models/``, deployment, trigger and worker commands.

Nothing here does data or model work; every task calls one ``models`` function.
"""
