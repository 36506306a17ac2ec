"""The state table (DynamoDB): what must hold across containers, behind one small adapter.

Items are keyed by `pk`/`sk` strings and expire through the `expiresAt` attribute (epoch
seconds, the table's time-to-live). DynamoDB deletes expired items within a day or two, not at
once: every reader here ignores an item whose `expiresAt` has passed, so expiry is exact for
the code even when the sweep is late.

Values are plain Python (str, int, bool, None, lists and dicts of them) and are converted to and
from DynamoDB's typed JSON here, without boto3 (whose import would cost every cold start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import error_code, translate

Item = dict[str, Any]
TTL_ATTRIBUTE = "expiresAt"


def to_dynamo(value: Any) -> dict[str, Any]:
    """A plain value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_dynamo(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_dynamo(v) for v in value]}
    raise TypeError(f"cannot store a {type(value).__name__} in the state table")


def from_dynamo(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as a plain value (numbers without a fraction as int)."""
    kind, data = next(iter(value.items()))
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(data)
    if kind == "N":
        number = float(data)
        return int(number) if number.is_integer() and "." not in data and "e" not in data.lower() \
            else number
    if kind == "S":
        return str(data)
    if kind == "M":
        return {k: from_dynamo(v) for k, v in data.items()}
    if kind == "L":
        return [from_dynamo(v) for v in data]
    raise TypeError(f"unexpected attribute type {kind} in the state table")


def _item(raw: Mapping[str, Any] | None) -> Item | None:
    return {k: from_dynamo(v) for k, v in raw.items()} if raw else None


@dataclass(frozen=True)
class Write:
    """One write of a transaction: a put, an update or a delete, with its condition.

    `update` is an UpdateExpression; `values` and `names` its placeholders (`:x`, `#x`).
    `item` is the whole item of a put (its keys included).
    """

    pk: str
    sk: str
    kind: str = "put"  # put | update | delete | check
    item: Item | None = None
    update: str | None = None
    condition: str | None = None
    values: Item | None = None
    names: Mapping[str, str] | None = None


class TransactionConflict(Exception):
    """A transaction refused on a condition; `current` holds each write's item as it was
    (None where that write's condition held or the item did not exist)."""

    def __init__(self, failed: Sequence[bool], current: Sequence[Item | None]) -> None:
        super().__init__("state table transaction refused on a condition")
        self.failed = tuple(failed)
        self.current = tuple(current)

    @property
    def contended(self) -> bool:
        """No condition failed: another transaction held an item (worth trying again)."""
        return not any(self.failed)


class StateTable:
    """The state table over an injected botocore DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def get(self, pk: str, sk: str) -> Item | None:
        """The item at `pk`/`sk` (a strongly consistent read), or None."""
        try:
            answer = self.client.get_item(TableName=self.name, Key=self._key(pk, sk),
                                          ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "dynamodb GetItem") from error
        return _item(answer.get("Item"))

    def query(self, pk: str, prefix: str = "") -> list[Item]:
        """Every item of partition `pk` whose sort key starts with `prefix` (consistent)."""
        request: dict[str, Any] = {
            "TableName": self.name, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :p)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":p": {"S": prefix}}
                                                              if prefix else {})},
        }
        items: list[Item] = []
        try:
            while True:
                answer = self.client.query(**request)
                items.extend(_item(raw) or {} for raw in answer.get("Items", []))
                if "LastEvaluatedKey" not in answer:
                    return items
                request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "dynamodb Query") from error

    def put_new(self, pk: str, sk: str, attributes: Mapping[str, Any], *,
                expires_at: int, now: int) -> bool:
        """Create the item unless a live one exists (an expired one is replaced); True when
        created."""
        item = {"pk": pk, "sk": sk, **attributes, TTL_ATTRIBUTE: expires_at}
        try:
            self.client.put_item(
                TableName=self.name, Item={k: to_dynamo(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk) OR #ttl <= :now",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": to_dynamo(now)},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise translate(error, "dynamodb PutItem") from error
        except BotoCoreError as error:
            raise translate(error, "dynamodb PutItem") from error
        return True

    def put(self, pk: str, sk: str, attributes: Mapping[str, Any], *, expires_at: int) -> None:
        """Write the item whatever was there."""
        item = {"pk": pk, "sk": sk, **attributes, TTL_ATTRIBUTE: expires_at}
        try:
            self.client.put_item(TableName=self.name,
                                 Item={k: to_dynamo(v) for k, v in item.items()})
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "dynamodb PutItem") from error

    def update(self, pk: str, sk: str, expression: str, *, values: Mapping[str, Any],
               condition: str | None = None,
               names: Mapping[str, str] | None = None) -> tuple[bool, Item | None]:
        """Apply UpdateExpression `expression`; (True, the item after) when done, (False, the
        item as it was) when `condition` refused it."""
        request: dict[str, Any] = {
            "TableName": self.name, "Key": self._key(pk, sk), "UpdateExpression": expression,
            "ExpressionAttributeValues": {k: to_dynamo(v) for k, v in values.items()},
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if condition:
            request["ConditionExpression"] = condition
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            answer = self.client.update_item(**request)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                old = error.response.get("Item")
                return False, _item(old if isinstance(old, Mapping) else None)
            raise translate(error, "dynamodb UpdateItem") from error
        except BotoCoreError as error:
            raise translate(error, "dynamodb UpdateItem") from error
        return True, _item(answer.get("Attributes"))

    def delete(self, pk: str, sk: str) -> None:
        """Delete the item (nothing when it is not there)."""
        try:
            self.client.delete_item(TableName=self.name, Key=self._key(pk, sk))
        except (ClientError, BotoCoreError) as error:
            raise translate(error, "dynamodb DeleteItem") from error

    def transact(self, writes: Sequence[Write]) -> None:
        """Apply `writes` all or none (at most 100). A refused condition raises
        TransactionConflict with each item as it was; other failures the project's errors."""
        try:
            self.client.transact_write_items(TransactItems=[self._op(w) for w in writes])
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise translate(error, "dynamodb TransactWriteItems") from error
            reasons = error.response.get("CancellationReasons") or []
            codes = {r.get("Code") for r in reasons}
            if "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes:
                # Another transaction was writing one of the items at that moment.
                raise TransactionConflict([False] * len(reasons),
                                          [None] * len(reasons)) from error
            if "ConditionalCheckFailed" not in codes:
                # Throttling or the service's trouble: worth a retry.
                raise translate(error, "dynamodb TransactWriteItems",
                                extra={"TransactionCanceledException"}) from error
            raise TransactionConflict(
                [r.get("Code") == "ConditionalCheckFailed" for r in reasons],
                [_item(r.get("Item")) for r in reasons]) from error
        except BotoCoreError as error:
            raise translate(error, "dynamodb TransactWriteItems") from error

    def _op(self, write: Write) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": self.name}
        if write.kind == "put":
            item = {"pk": write.pk, "sk": write.sk, **(write.item or {})}
            body["Item"] = {k: to_dynamo(v) for k, v in item.items()}
        else:
            body["Key"] = self._key(write.pk, write.sk)
        if write.update:
            body["UpdateExpression"] = write.update
        if write.condition:
            body["ConditionExpression"] = write.condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if write.values:
            body["ExpressionAttributeValues"] = {k: to_dynamo(v) for k, v in write.values.items()}
        if write.names:
            body["ExpressionAttributeNames"] = dict(write.names)
        kind = {"put": "Put", "update": "Update", "delete": "Delete", "check": "ConditionCheck"}
        return {kind[write.kind]: body}
