import yaml


def handler(event, context):
    return {"parsed": yaml.safe_load(event.get("document", "a: 1"))}
