"""to-bikes: predict whether a Bike Share Toronto trip was taken by a member or a casual rider.

Plain Python (pandas/pyarrow, scikit-learn, mlflow, boto3). Nothing here imports Prefect:
every stage runs from one command line (``python -m models COMMAND --help``; ``models.cli``).
"""

__version__ = "0.1.0"
