"""Prefect 3 wiring of the pipeline: flows and tasks over ``models/``; deployment operations in deployment/.

Nothing here does data or model work; every task calls one ``models`` function.
"""
