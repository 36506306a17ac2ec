"""Contract of the GitHub fake: the App webhook's deliveries, listed and redelivered."""

from __future__ import annotations

from devstack.github_fake import GitHubFake
from devstack.github_testing import FakeGitHubClient


def test_deliveries_are_listed_newest_first_with_a_cursor(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    now = fake.clock()
    records = [fake.deliveries.add(now - minutes * 60, status_code=code)
               for minutes, code in ((3, 200), (2, 502), (1, 200))]

    first = client.as_app("GET", "/app/hook/deliveries", params={"per_page": 2})
    assert first.status_code == 200
    assert [d["id"] for d in first.json()] == [records[2].id, records[1].id]
    assert first.json()[1]["status_code"] == 502 and first.json()[1]["action"] == "queued"
    second = client.call("GET", first.links["next"]["url"], token=None)
    assert second.status_code == 401  # the next page needs the App's JWT too
    second = client.as_app("GET", first.links["next"]["url"])
    assert [d["id"] for d in second.json()] == [records[0].id]
    assert "next" not in second.links


def test_deliveries_can_be_filtered_by_status(fake: GitHubFake, client: FakeGitHubClient) -> None:
    failed = fake.deliveries.add(fake.clock(), status_code=500)
    fake.deliveries.add(fake.clock(), status_code=200)
    answer = client.as_app("GET", "/app/hook/deliveries", params={"status": "failure"})
    assert [d["id"] for d in answer.json()] == [failed.id]


def test_a_redelivery_is_logged_under_the_same_guid(
    fake: GitHubFake, client: FakeGitHubClient
) -> None:
    failed = fake.deliveries.add(fake.clock() - 60, status_code=502)
    fake.deliveries.on_redelivery = lambda record: 201

    answer = client.as_app("POST", f"/app/hook/deliveries/{failed.id}/attempts")

    assert answer.status_code == 202
    newest = client.as_app("GET", "/app/hook/deliveries").json()[0]
    assert (newest["guid"], newest["redelivery"], newest["status_code"]) == (failed.guid, True,
                                                                          201)
    assert fake.deliveries.redelivered == [failed.id]
    assert client.as_app("POST", "/app/hook/deliveries/1/attempts").status_code == 404
