"""Scripts used beside prefect.yaml: local set-up (`bootstrap.sh`) and serving."""
