"""The pipeline's register step (``components.workflow_pipeline``, ``pipeline_spec``), in the MLflow image: packs the trained
model of ``/work/model``, logs a run (dataset, metric, model, archive) to the tenant's experiment with the tenant's own
MLflow account, uploads the archive to the tenant's model storage, registers the model and writes the archive's
``s3://`` URI to ``/work/model-uri`` (the step's output, which the deploy step serves).

Environment: ``MLFLOW_TRACKING_URI`` and the tenant's MLflow credentials, ``EXPERIMENT``, ``REGISTERED_MODEL``,
``DATASET_URI``, ``METRIC_NAME``/``METRIC_VALUE``, ``MODEL_NAME``, ``MODEL_BUCKET``/``MODEL_PREFIX``, and the S3
settings (``S3_ENDPOINT_URL``, region, keys or the executor's workload identity).
"""

import os
import tarfile


def main():
    import boto3  # the MLflow image's; not imported at module level, so the module loads where they are not installed
    import mlflow

    model_dir, archive = "/work/model", "/work/model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model_dir, arcname=".")
    mlflow.set_experiment(os.environ["EXPERIMENT"])
    with mlflow.start_run() as run:
        mlflow.log_param("dataset_uri", os.environ["DATASET_URI"])
        mlflow.log_metric(os.environ["METRIC_NAME"], float(os.environ["METRIC_VALUE"]))
        mlflow.log_artifacts(model_dir, "model")
        mlflow.log_artifact(archive)
        # KServe fetches (and unpacks) the archive from the tenant's own bucket, with the tenant's keys or identity.
        bucket = os.environ["MODEL_BUCKET"]
        key = f"{os.environ['MODEL_PREFIX']}models/{os.environ['MODEL_NAME']}/{run.info.run_id}/model.tar.gz"
        boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL")).upload_file(archive, bucket, key)
        mlflow.set_tag("storage_uri", f"s3://{bucket}/{key}")
    mlflow.register_model(f"runs:/{run.info.run_id}/model", os.environ["REGISTERED_MODEL"])
    with open("/work/model-uri", "w") as out:
        out.write(f"s3://{bucket}/{key}")


if __name__ == "__main__":
    main()
