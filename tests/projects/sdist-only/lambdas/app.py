import docopt


def handler(event, context):
    return {"docopt": docopt.__version__}
