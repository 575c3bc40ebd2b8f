#!/usr/bin/env python3
"""Creates parallax's AWS resources on an emulator (moto, LocalStack), named exactly as the
CloudFormation stack in infra/cloudformation names them:

- bucket S3_BUCKET, with CORS for browser uploads and an object-created notification for
  uploads/ to the chunking queue;
- queues {prefix}-{chunking,segments,segment-output,reassembly}, each with a dead-letter queue
  {prefix}-{name}-dlq and a redrive policy (maxReceiveCount = QUEUE_MAX_RECEIVES);
- tables {prefix}-jobs (key job_id; GSIs status-created-index and status-completed-index) and
  {prefix}-segment-completions (keys job_id, segment_index).

The names mirror core/src/aws.rs (ResourceNames); the conformance tests find the resources by
those names, so a drift fails them. Re-running is harmless: existing resources are kept.

Usage: create_resources.py --endpoint URL [--name-prefix P] [--bucket B] [--region R]
"""

import argparse
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

QUEUES = ["chunking", "segments", "segment-output", "reassembly"]
UPLOADS_PREFIX = "uploads/"


def queue_arn(sqs, url):
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def create_queues(sqs, prefix, max_receives, visibility):
    urls = {}
    for name in QUEUES:
        dlq = sqs.create_queue(
            QueueName=f"{prefix}-{name}-dlq",
            Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
        )["QueueUrl"]
        redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq), "maxReceiveCount": max_receives}
        url = sqs.create_queue(
            QueueName=f"{prefix}-{name}",
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        urls[name] = url
    return urls


def create_tables(ddb, prefix):
    tables = [
        dict(
            TableName=f"{prefix}-jobs",
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "job_id", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "created_us", "AttributeType": "N"},
                {"AttributeName": "completed_sk", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "status-created-index",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "created_us", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "status-completed-index",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "completed_sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            BillingMode="PAY_PER_REQUEST",
        ),
        dict(
            TableName=f"{prefix}-segment-completions",
            KeySchema=[
                {"AttributeName": "job_id", "KeyType": "HASH"},
                {"AttributeName": "segment_index", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "job_id", "AttributeType": "S"},
                {"AttributeName": "segment_index", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        ),
    ]
    for spec in tables:
        try:
            ddb.create_table(**spec)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceInUseException":
                raise
        ddb.get_waiter("table_exists").wait(TableName=spec["TableName"])


def create_bucket(s3, sqs, bucket, region, chunking_url, cors_origin):
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["PUT", "GET", "HEAD"],
                    "AllowedOrigins": [cors_origin],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )
    chunking_arn = queue_arn(sqs, chunking_url)
    # S3 may send to the queue only for this bucket (as the CloudFormation queue policy says).
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": chunking_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=chunking_url, Attributes={"Policy": json.dumps(policy)})
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "uploads-to-chunking",
                    "QueueArn": chunking_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOADS_PREFIX}]}
                    },
                }
            ]
        },
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="emulator URL")
    p.add_argument("--name-prefix", default=os.environ.get("NAME_PREFIX", "parallax"))
    p.add_argument("--bucket", default=os.environ.get("S3_BUCKET", "parallax-local"))
    p.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    p.add_argument(
        "--max-receives", type=int, default=int(os.environ.get("QUEUE_MAX_RECEIVES", "4"))
    )
    p.add_argument(
        "--visibility-timeout",
        type=int,
        default=int(os.environ.get("QUEUE_VISIBILITY_TIMEOUT_SECS", "60")),
    )
    p.add_argument("--cors-origin", default=os.environ.get("PUBLIC_URL", "*"))
    a = p.parse_args()
    if not a.endpoint:
        sys.exit("create_resources.py: --endpoint (or AWS_ENDPOINT_URL) is required; this script is for emulators")
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=a.region,
    )
    s3 = session.client("s3", endpoint_url=a.endpoint)
    sqs = session.client("sqs", endpoint_url=a.endpoint)
    ddb = session.client("dynamodb", endpoint_url=a.endpoint)
    urls = create_queues(sqs, a.name_prefix, a.max_receives, a.visibility_timeout)
    create_tables(ddb, a.name_prefix)
    create_bucket(s3, sqs, a.bucket, a.region, urls["chunking"], a.cors_origin)
    print(f"created resources for prefix {a.name_prefix!r}, bucket {a.bucket!r} at {a.endpoint}")


if __name__ == "__main__":
    main()
