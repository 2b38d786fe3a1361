import psycopg2


def handler(event, context):
    return {"libpq": psycopg2.extensions.libpq_version()}
