"""The data stage: raw ridership files (local or S3) -> checked trips with features, as Parquet."""
