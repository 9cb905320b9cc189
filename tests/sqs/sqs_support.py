"""Helpers for the SQS tests: queue set-up under a per-test prefix, Lambda event records built
from really received messages, and Lambda's context object."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"


@dataclass
class Queues:
    """Creates queues under one test's prefix and reads them back."""

    sqs: SQSClient
    endpoint: str
    prefix: str

    def create(
        self,
        name: str,
        *,
        dlq: str | None = None,
        max_receive_count: int = 5,
        attributes: dict[str, str] | None = None,
    ) -> str:
        attrs = dict(attributes or {})
        if name.endswith(".fifo"):
            attrs["FifoQueue"] = "true"
        if dlq is not None:
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": self.arn(dlq), "maxReceiveCount": max_receive_count}
            )
        return self.sqs.create_queue(QueueName=self.prefix + name, Attributes=attrs)["QueueUrl"]  # type: ignore[arg-type]

    def url(self, name: str) -> str:
        return self.sqs.get_queue_url(QueueName=self.prefix + name)["QueueUrl"]

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{REGION}:123456789012:{self.prefix}{name}"

    def receive(
        self, name: str, *, wait: int = 0, visibility: int | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url(name),
            "MaxNumberOfMessages": limit,
            "WaitTimeSeconds": wait,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility is not None:
            kwargs["VisibilityTimeout"] = visibility
        return list(self.sqs.receive_message(**kwargs).get("Messages", []))  # type: ignore[arg-type]

    def depth(self, name: str) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url(name),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
        }

    def lambda_event(self, name: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS poller would hand the function for these received messages."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                    "messageAttributes": {
                        k: {
                            "stringValue": v.get("StringValue"),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v["DataType"],
                        }
                        for k, v in m.get("MessageAttributes", {}).items()
                    },
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn(name),
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def lambda_deletes(self, name: str, event: dict[str, Any], response: dict[str, Any]) -> None:
        """What Lambda does after the function returns: delete every record not reported."""
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.sqs.delete_message(
                    QueueUrl=self.url(name), ReceiptHandle=record["receiptHandle"]
                )


class FakeLambdaContext:
    """Lambda's context object: only what the handler reads."""

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms
        self.aws_request_id = uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
