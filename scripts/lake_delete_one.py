#!/usr/bin/env python3
"""Deletes one data file of an encore lake on S3 (CI's damage check) and prints its key.

usage: lake_delete_one.py ENDPOINT BUCKET PREFIX   (credentials from AWS_ACCESS_KEY_ID/SECRET)

Picks the second data file in key order, so that the damage is in the middle of a partition.
"""
import os
import sys

from pyarrow import fs


def main() -> int:
    endpoint, bucket, prefix = sys.argv[1], sys.argv[2], sys.argv[3].strip("/")
    scheme, _, host = endpoint.partition("://")
    s3 = fs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=host,
        scheme=scheme,
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )
    infos = s3.get_file_info(fs.FileSelector(f"{bucket}/{prefix}", recursive=True))
    files = sorted(
        i.path for i in infos
        if i.type == fs.FileType.File and i.path.endswith(".parquet") and "/_" not in i.path
    )
    if len(files) < 2:
        print(f"only {len(files)} data files under {bucket}/{prefix}", file=sys.stderr)
        return 1
    s3.delete_file(files[1])
    print(files[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
