"""Sample Lambda function: validate an order from an API Gateway event and price it.

Dependencies exercise the kit: pydantic (pydantic-core is a compiled extension), PyYAML (the
pricing rules, with its C loader when present) and requests (optional webhook).
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import requests
import yaml
from pydantic import BaseModel, Field, ValidationError

RULES = yaml.safe_load((Path(__file__).parent / "pricing.yaml").read_text(encoding="utf-8"))


class Line(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0, le=1000)


class Order(BaseModel):
    order_id: str
    lines: list[Line] = Field(min_length=1)


def price(order: Order) -> Decimal:
    prices = RULES["prices"]
    total = sum(Decimal(str(prices[line.sku])) * line.quantity for line in order.lines)
    if total >= Decimal(str(RULES["discount"]["over"])):
        total *= 1 - Decimal(str(RULES["discount"]["rate"]))
    return total.quantize(Decimal("0.01"))


def response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    body = event.get("body") or "{}"
    try:
        order = Order.model_validate_json(body if isinstance(body, str) else json.dumps(body))
    except ValidationError as exc:
        return response(400, {"error": "invalid order", "details": exc.errors(include_url=False)})
    unknown = sorted({line.sku for line in order.lines} - set(RULES["prices"]))
    if unknown:
        return response(422, {"error": "unknown sku", "skus": unknown})
    total = price(order)
    webhook = os.environ.get("ORDER_WEBHOOK_URL")
    if webhook:
        requests.post(webhook, json={"order_id": order.order_id, "total": str(total)}, timeout=5)
    request_id = getattr(context, "aws_request_id", None)
    return response(200, {"order_id": order.order_id, "total": str(total), "request_id": request_id})
