"""Prefect 3 wiring of the pipeline: ``flows/`` over ``models/``, ``commands/`` a person runs, ``deploy/``.

Nothing here does data or model work; every task calls one ``models`` function.
"""
