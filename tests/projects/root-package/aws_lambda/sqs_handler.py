"""A function whose package sits at the zip root (SRC=.), with a subpackage named `build`."""

import six

from aws_lambda.build import plan


def handler(event, context):
    return {"records": len(event.get("Records", [])), "plan": plan(), "six": six.__version__}
