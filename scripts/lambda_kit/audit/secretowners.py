"""Which installed distribution ships a secret-looking file: the test keys and sample certificates
a package carries (gevent's tests/*.pem) are not the user's secrets.

A file belongs to a distribution when that distribution's RECORD lists it with these very bytes
(the RECORD's sha256 of the file equals the file's): a user's key dropped into a package's folder,
or put in place of a file a RECORD lists, stays the user's. RECORDs are read only when the audit
found a candidate, each up to RECORD_CAP bytes; a candidate is hashed up to SECRET_CAP bytes (a
larger one is not a distribution's test key and stays an error).
"""

from __future__ import annotations

import csv
import io
import re

from lambda_kit.audit.auditcore import Collector, Context, encrypted
from lambda_kit.common.digests import record_digest

RECORD_CAP = 16 << 20  # botocore's RECORD: about 0.3 MB
SECRET_CAP = 1 << 20
RECORD = re.compile(r"^([^/]+)-([^/-]+)\.dist-info/RECORD$")


def owners(ctx: Context, candidates: list, found: Collector) -> dict[str, str]:
    """zip name -> "distribution version" for each candidate a RECORD lists with its bytes."""
    wanted = {info.filename: info for info in candidates}
    listed: dict[str, tuple[str, str]] = {}  # name -> (owner, RECORD's hash)
    for info in ctx.files:
        match = RECORD.match(info.filename)
        if not match or encrypted(info):
            continue
        data = ctx.read(info, RECORD_CAP, found, whole=False)
        if data is None:
            continue
        owner = f"{match.group(1)} {match.group(2)}"
        for row in csv.reader(io.StringIO(data.decode("utf-8", "replace"))):
            if len(row) >= 2 and row[0] in wanted and row[1].startswith("sha256="):
                listed.setdefault(row[0], (owner, row[1][len("sha256=") :]))
    result = {}
    for name, (owner, digest) in listed.items():
        if wanted[name].file_size > SECRET_CAP:
            continue
        data = ctx.read(wanted[name], SECRET_CAP, found)  # a size that lies is zip-corrupt's finding
        if data is not None and digest == record_digest(data):
            result[name] = owner
    return result
