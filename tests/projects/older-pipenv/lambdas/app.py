from typing_extensions import TypedDict


class Reply(TypedDict):
    statusCode: int


def handler(event, context):
    return Reply(statusCode=200)
