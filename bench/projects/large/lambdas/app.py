"""Benchmark function, large dependency set: pandas and boto3."""

import boto3
import pandas


def handler(event, context):
    frame = pandas.DataFrame({"n": [1, 2, 3]})
    return {"pandas": pandas.__version__, "boto3": boto3.__version__, "sum": int(frame["n"].sum())}
