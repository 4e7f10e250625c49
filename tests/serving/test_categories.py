"""Integer-coded categories over REST: JSON numbers are read as the text training saw."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from construction_delays.serving import ServingConfig, create_app

from tests.serving.conftest import integer_coded_table, train_on_codes


def test_a_category_code_may_be_sent_as_a_number_or_as_text(tmp_path: Path) -> None:
    table = integer_coded_table()
    table.to_csv(tmp_path / "codes.csv", index=False)
    scorer, _ = train_on_codes(tmp_path / "codes.csv")
    app = create_app(scorer, ServingConfig(log_path=None))
    codes = [3, 3.0, "3", 1, "1", None]
    body = {"records": [{"size": 0.0, "store_code": code} for code in codes]}

    async def post(payload: dict[str, Any]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # in-process: the app's own request handling
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/predict", json=payload)

    response = asyncio.run(post(body))
    refused = asyncio.run(post({"records": [{"size": 0.0, "store_code": True}]}))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["predictions"][:3] == ["late"] * 3  # code 3 recognised however it is sent
    assert answer["probabilities"][0] == answer["probabilities"][1] == answer["probabilities"][2]
    assert answer["predictions"][3:5] == ["ok"] * 2
    assert answer["probabilities"][3] == answer["probabilities"][4]
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["msg"] == "Input should be a string or a finite number"
