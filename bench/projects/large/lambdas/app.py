"""Benchmark function, large dependency set: pandas and boto3."""

import boto3
import pandas


def handler(event, context):
    frame = pandas.DataFrame({"n": [1, 2, 3]})
    s3 = boto3.client("s3", region_name="us-east-1")  # loads the service model; no call is made
    return {
        "pandas": pandas.__version__,
        "boto3": boto3.__version__,
        "sum": int(frame["n"].sum()),
        "s3_operations": len(s3.meta.service_model.operation_names),
    }
