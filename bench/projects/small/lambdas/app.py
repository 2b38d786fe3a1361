"""Benchmark function, small dependency set: requests, pydantic, PyYAML."""

import pydantic
import requests
import yaml


def handler(event, context):
    return {"pydantic": pydantic.VERSION, "requests": requests.__version__, "yaml": yaml.__version__}
