import six
from orders_common import VERSION, normalise_sku


def main(event, context):
    return {"sku": normalise_sku(event.get("sku", "")), "lib": VERSION, "six": six.__version__}
