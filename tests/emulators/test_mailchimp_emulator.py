"""The Mailchimp emulator behaves like the Marketing API v3 slice privasync uses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from privasync.emulators.mailchimp import MailchimpEmulator, subscriber_hash
from tests.emulators.conftest import serve
from tests.timing import scaled

KEY = "emulatorkey-us6"
LIST = "a6b5da1054"


class Receiver:
    """A tiny webhook endpoint: records every request, answers from a status script."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.post_statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append((self.command, dict(self.headers), body))
                status = 200
                if self.command == "POST" and receiver.post_statuses:
                    status = receiver.post_statuses.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mc?token=s3cret"

    def posts(self) -> list[dict[str, str]]:
        return [dict(parse_qsl(body.decode(), strict_parsing=True))
                for method, _, body in self.requests if method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def running() -> Iterator[MailchimpEmulator]:
    yield from serve(MailchimpEmulator())


@pytest.fixture
def mc(running: MailchimpEmulator) -> MailchimpEmulator:
    running.reset()
    return running


@pytest.fixture(scope="module")
def listening() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def receiver(listening: Receiver) -> Receiver:
    listening.requests.clear()
    listening.post_statuses.clear()
    return listening


@pytest.fixture
def api(mc: MailchimpEmulator) -> requests.Session:
    session = requests.Session()
    session.auth = ("anystring", KEY)
    return session


def member_url(mc: MailchimpEmulator, email: str) -> str:
    return f"{mc.url}/3.0/lists/{LIST}/members/{subscriber_hash(email)}"


def test_a_request_without_the_api_key_gets_a_problem_json_401(mc: MailchimpEmulator) -> None:
    response = requests.get(f"{mc.url}/3.0/ping", auth=("anystring", "wrong-us6"),
                            timeout=scaled(5))
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "API Key Invalid"
    assert set(problem) == {"type", "title", "status", "detail", "instance"}
    assert requests.get(f"{mc.url}/3.0/ping", timeout=scaled(5)).status_code == 401


def test_basic_and_bearer_auth_both_reach_ping(mc: MailchimpEmulator) -> None:
    basic = requests.get(f"{mc.url}/3.0/ping", auth=("x", KEY), timeout=scaled(5))
    bearer = requests.get(f"{mc.url}/3.0/ping", headers={"Authorization": f"Bearer {KEY}"},
                          timeout=scaled(5))
    assert basic.status_code == bearer.status_code == 200
    assert basic.json() == {"health_status": "Everything's Chimpy!"}


def test_an_unknown_member_or_list_is_resource_not_found(mc: MailchimpEmulator,
                                                         api: requests.Session) -> None:
    missing = api.get(member_url(mc, "nobody@example.com"), timeout=scaled(5))
    other_list = api.get(f"{mc.url}/3.0/lists/ffffffffff", timeout=scaled(5))
    assert missing.status_code == other_list.status_code == 404
    assert missing.json()["title"] == "Resource Not Found"
    assert missing.headers["Content-Type"] == "application/problem+json"


def test_put_adds_a_member_under_the_hash_of_the_lowercased_address(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    response = api.put(member_url(mc, "Ann@Example.com"), timeout=scaled(5), json={
        "email_address": "Ann@Example.com", "status_if_new": "subscribed",
        "merge_fields": {"FNAME": "Ann"}})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == subscriber_hash("ann@example.com")
    assert body["status"] == "subscribed"
    assert body["last_changed"].endswith("+00:00")
    assert mc.member("ann@example.com")["merge_fields"] == {"FNAME": "Ann"}  # type: ignore[index]


def test_a_malformed_body_gets_a_validation_problem(mc: MailchimpEmulator,
                                                    api: requests.Session) -> None:
    response = api.put(member_url(mc, "a@example.com"), timeout=scaled(5),
                       json={"email_address": "b@example.com", "status_if_new": "subscribed"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "email_address"
    mc.add_member("a@example.com")
    broken = api.patch(member_url(mc, "a@example.com"), data=b"{", timeout=scaled(5))
    assert broken.status_code == 400
    assert broken.json()["title"] == "JSON Parse Error"


@pytest.mark.parametrize("opted_out", ["unsubscribed", "cleaned"])
def test_resubscribing_an_opted_out_member_is_a_compliance_error(
        mc: MailchimpEmulator, api: requests.Session, opted_out: str) -> None:
    mc.add_member("c@example.com", status=opted_out)
    response = api.patch(member_url(mc, "c@example.com"), json={"status": "subscribed"},
                         timeout=scaled(5))
    assert response.status_code == 400
    assert response.json()["title"] == "Member In Compliance State"
    assert mc.member("c@example.com")["status"] == opted_out  # type: ignore[index]
    pending = api.patch(member_url(mc, "c@example.com"), json={"status": "pending"},
                        timeout=scaled(5))
    assert pending.status_code == 200


def test_an_archived_opt_out_still_cannot_be_resubscribed(mc: MailchimpEmulator,
                                                          api: requests.Session) -> None:
    mc.add_member("arch@example.com")
    api.delete(member_url(mc, "arch@example.com"), timeout=scaled(5))
    mc.user_unsubscribe("arch@example.com")
    api.delete(member_url(mc, "arch@example.com"), timeout=scaled(5))
    response = api.patch(member_url(mc, "arch@example.com"), json={"status": "subscribed"},
                         timeout=scaled(5))
    assert response.json()["title"] == "Member In Compliance State"
    assert mc.member("arch@example.com")["status"] == "archived"  # type: ignore[index]


def test_delete_archives_and_delete_permanent_forgets_the_address(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("d@example.com")
    assert api.delete(member_url(mc, "d@example.com"), timeout=scaled(5)).status_code == 204
    assert mc.member("d@example.com")["status"] == "archived"  # type: ignore[index]
    forget = api.post(f"{member_url(mc, 'd@example.com')}/actions/delete-permanent",
                      timeout=scaled(5))
    assert forget.status_code == 204
    assert mc.member("d@example.com") is None
    again = api.put(member_url(mc, "d@example.com"), timeout=scaled(5), json={
        "email_address": "d@example.com", "status_if_new": "unsubscribed"})
    assert again.status_code == 400
    assert again.json()["title"] == "Forgotten Email Not Subscribed"
    batch = api.post(f"{mc.url}/3.0/lists/{LIST}", timeout=scaled(5), json={
        "members": [{"email_address": "d@example.com", "status": "unsubscribed"}]}).json()
    assert batch["error_count"] == 1 and batch["total_created"] == 0
    assert mc.member("d@example.com") is None


@pytest.mark.parametrize("status", ["subscribed", "unsubscribed", "cleaned", "pending",
                                    "archived"])
def test_delete_permanent_removes_a_member_in_any_status_and_then_answers_404(
        mc: MailchimpEmulator, api: requests.Session, status: str) -> None:
    mc.add_member("any@example.com", status="subscribed" if status == "archived" else status)
    if status == "archived":
        api.delete(member_url(mc, "any@example.com"), timeout=scaled(5))
    forget = f"{member_url(mc, 'any@example.com')}/actions/delete-permanent"
    assert api.post(forget, timeout=scaled(5)).status_code == 204
    assert api.get(member_url(mc, "any@example.com"), timeout=scaled(5)).status_code == 404
    again = api.post(forget, timeout=scaled(5))
    assert again.status_code == 404 and again.json()["title"] == "Resource Not Found"
    with pytest.raises(ValueError):
        mc.add_member("any@example.com")


def test_a_member_reads_back_with_its_fields_permissions_tags_and_zoned_timestamps(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("t@example.com", merge_fields={"FNAME": "Tia"}, tags=("vip", "fair 2026"),
                  language="fr")
    member = api.get(member_url(mc, "t@example.com"), timeout=scaled(5)).json()
    assert member["merge_fields"] == {"FNAME": "Tia"}
    assert member["marketing_permissions"][0]["enabled"] is True
    assert [t["name"] for t in member["tags"]] == ["vip", "fair 2026"]
    assert member["tags_count"] == 2 and member["language"] == "fr"
    assert member["timestamp_opt"].endswith("+00:00") and member["last_changed"].endswith(
        "+00:00")
    assert member["ip_signup"] == member["timestamp_signup"] == ""  # imported, not a form
    assert member["source"] == "Import" and member["_links"][0]["rel"] == "self"
    mc.user_subscribe("form@example.com")
    signed_up = api.get(member_url(mc, "form@example.com"), timeout=scaled(5)).json()
    assert signed_up["ip_signup"] and signed_up["timestamp_signup"].endswith("+00:00")
    assert signed_up["ip_opt"] and signed_up["source"] == "Hosted Signup Form"


def test_a_member_read_keeps_only_the_fields_asked_for_minus_the_excluded_ones(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("p@example.com", merge_fields={"FNAME": "Pia", "LNAME": "Lo"}, tags=("a",))
    url = member_url(mc, "p@example.com")
    picked = api.get(url, params={"fields": "status,merge_fields.FNAME,tags.name"},
                     timeout=scaled(5)).json()
    assert picked == {"status": "subscribed", "merge_fields": {"FNAME": "Pia"},
                      "tags": [{"name": "a"}]}
    trimmed = api.get(url, params={"exclude_fields": "_links,id,location.latitude"},
                      timeout=scaled(5)).json()
    assert {"_links", "id"}.isdisjoint(trimmed) and "latitude" not in trimmed["location"]
    assert trimmed["merge_fields"] == {"FNAME": "Pia", "LNAME": "Lo"}
    both = api.get(url, params={"fields": "merge_fields,status",
                                "exclude_fields": "merge_fields.LNAME"}, timeout=scaled(5)).json()
    assert both == {"status": "subscribed", "merge_fields": {"FNAME": "Pia"}}
    assert api.get(f"{mc.url}/3.0/lists/{LIST}", params={"fields": "id"},
                   timeout=scaled(5)).json() == {"id": LIST}


def test_batch_creates_updates_and_reports_compliance_errors_per_member(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("old@example.com")
    mc.add_member("gone@example.com", status="unsubscribed")
    response = api.post(f"{mc.url}/3.0/lists/{LIST}", timeout=scaled(5), json={
        "update_existing": True, "members": [
            {"email_address": "new@example.com", "status": "subscribed"},
            {"email_address": "old@example.com", "status": "unsubscribed"},
            {"email_address": "gone@example.com", "status": "subscribed"}]})
    body = response.json()
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (1, 1, 1)
    assert body["errors"][0]["email_address"] == "gone@example.com"
    # The specification lists two codes only: a compliance refusal is ERROR_GENERIC.
    assert body["errors"][0]["error_code"] == "ERROR_GENERIC"
    assert mc.member("old@example.com")["status"] == "unsubscribed"  # type: ignore[index]
    assert mc.member("gone@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_batch_without_update_existing_refuses_existing_members(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("e@example.com")
    body = api.post(f"{mc.url}/3.0/lists/{LIST}", timeout=scaled(5), json={
        "members": [{"email_address": "e@example.com", "status": "unsubscribed"}]}).json()
    assert body["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert mc.member("e@example.com")["status"] == "subscribed"  # type: ignore[index]


def test_batch_merge_field_updates_are_stored_and_a_status_less_entry_adds_nobody(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("f@example.com", status="unsubscribed", merge_fields={"FNAME": "F", "X": "1"})
    body = api.post(f"{mc.url}/3.0/lists/{LIST}", timeout=scaled(5), json={
        "update_existing": True, "members": [
            {"email_address": "f@example.com", "merge_fields": {"FNAME": "Fay", "X": ""}},
            {"email_address": "nobody@example.com", "merge_fields": {"FNAME": "N"}}]}).json()
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (0, 1, 1)
    assert body["errors"][0]["email_address"] == "nobody@example.com"
    member = mc.member("f@example.com")
    assert member is not None
    assert member["merge_fields"] == {"FNAME": "Fay", "X": ""}
    assert member["status"] == "unsubscribed"
    assert mc.member("nobody@example.com") is None


def test_a_batch_of_more_than_500_members_is_refused(mc: MailchimpEmulator,
                                                     api: requests.Session) -> None:
    members = [{"email_address": f"p{i}@example.com", "status": "subscribed"} for i in range(501)]
    response = api.post(f"{mc.url}/3.0/lists/{LIST}", json={"members": members}, timeout=scaled(5))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "members"
    assert mc.member("p0@example.com") is None


def members_page(api: requests.Session, mc: MailchimpEmulator, **params: Any) -> dict[str, Any]:
    response = api.get(f"{mc.url}/3.0/lists/{LIST}/members", params=params, timeout=scaled(10))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_paging_through_the_members_returns_each_one_once(mc: MailchimpEmulator,
                                                          api: requests.Session) -> None:
    emails = [f"m{i}@example.com" for i in range(2500)]
    for email in emails:
        mc.add_member(email, status="unsubscribed" if email.startswith("m1") else "subscribed")
    pages = [members_page(api, mc, count=1000, offset=offset) for offset in (0, 1000, 2000, 3000)]
    assert [len(p["members"]) for p in pages] == [1000, 1000, 500, 0]
    assert {p["total_items"] for p in pages} == {2500}
    assert {p["list_id"] for p in pages} == {LIST}
    seen = [m["email_address"] for p in pages for m in p["members"]]
    assert seen == emails  # each once, in the order they joined, whatever their status
    assert mc.calls[f"GET /3.0/lists/{LIST}/members"] == 4


def test_the_members_read_leaves_archived_out_unless_asked_and_filters_by_status(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    for i in range(11):
        mc.add_member(f"s{i}@example.com")
    mc.add_member("u@example.com", status="unsubscribed")
    mc.add_member("c@example.com", status="cleaned")
    mc.add_member("gone@example.com")
    assert api.delete(member_url(mc, "gone@example.com"), timeout=scaled(5)).status_code == 204
    default = members_page(api, mc)
    assert len(default["members"]) == 10 and default["total_items"] == 13
    everyone = members_page(api, mc, count=1000)["members"]
    assert "gone@example.com" not in {m["email_address"] for m in everyone}
    assert {m["id"] for m in everyone} == {subscriber_hash(m["email_address"]) for m in everyone}
    for status, expected in (("unsubscribed", ["u@example.com"]), ("cleaned", ["c@example.com"]),
                             ("archived", ["gone@example.com"]), ("pending", [])):
        page = members_page(api, mc, status=status)
        assert [m["email_address"] for m in page["members"]] == expected
        assert page["total_items"] == len(expected)
    assert members_page(api, mc, status="subscribed", count=5, offset=10)["total_items"] == 11


def test_the_members_read_returns_only_the_fields_asked_for(mc: MailchimpEmulator,
                                                            api: requests.Session) -> None:
    mc.add_member("a@example.com", merge_fields={"FNAME": "Ann"})
    mc.add_member("b@example.com", status="unsubscribed")
    page = members_page(api, mc, fields="members.id,members.email_address,members.status,"
                                        "total_items")
    assert page == {"total_items": 2, "members": [
        {"id": subscriber_hash("a@example.com"), "email_address": "a@example.com",
         "status": "subscribed"},
        {"id": subscriber_hash("b@example.com"), "email_address": "b@example.com",
         "status": "unsubscribed"}]}
    assert members_page(api, mc, fields="total_items,list_id") == {"total_items": 2,
                                                                   "list_id": LIST}
    assert members_page(api, mc, fields="members")["members"][0]["merge_fields"] == {
        "FNAME": "Ann"}


def test_the_members_read_keeps_those_changed_since_a_time_archived_ones_when_asked(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    """[S1] since_last_changed: "Restrict results to subscribers whose information changed
    after the set timeframe"; any change to a member moves its last_changed."""
    for email in ("old@example.com", "renamed@example.com", "edited@example.com",
                  "archived@example.com"):
        mc.add_member(email)
    with mc.lock:  # members last changed long ago
        for member in mc._members.values():
            member["last_changed"] = "2026-01-01T00:00:00+00:00"
    mc.add_member("new@example.com")
    mc.user_change_email("renamed@example.com", "renamed.again@example.com")
    assert api.patch(member_url(mc, "edited@example.com"), timeout=scaled(5),
                     json={"merge_fields": {"FNAME": "E"}}).status_code == 200
    assert api.delete(member_url(mc, "archived@example.com"), timeout=scaled(5)).status_code \
        == 204
    since = {"since_last_changed": "2026-06-01T00:00:00+00:00", "count": 1000,
             "fields": "members.id,members.email_address,total_items"}
    changed = members_page(api, mc, **since)
    assert {m["email_address"] for m in changed["members"]} == {
        "new@example.com", "renamed.again@example.com", "edited@example.com"}
    assert changed["total_items"] == 3
    archived = members_page(api, mc, status="archived", **since)
    assert [m["email_address"] for m in archived["members"]] == ["archived@example.com"]
    assert members_page(api, mc, since_last_changed="2025-01-01T00:00:00+00:00")[
        "total_items"] == 4
    for bad in ("yesterday", "2026-06-01T00:00:00"):  # no offset: no time at all
        refused = api.get(f"{mc.url}/3.0/lists/{LIST}/members", timeout=scaled(5),
                          params={"since_last_changed": bad})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["field"] == "since_last_changed"


def test_the_members_read_needs_the_api_key_and_valid_paging(mc: MailchimpEmulator,
                                                             api: requests.Session) -> None:
    mc.add_member("a@example.com")
    url = f"{mc.url}/3.0/lists/{LIST}/members"
    anonymous = requests.get(url, timeout=scaled(5))
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    assert requests.get(url, auth=("x", "wrong-us6"), timeout=scaled(5)).status_code == 401
    for params in ({"count": "1001"}, {"count": "0"}, {"offset": "-1"}, {"count": "ten"},
                   {"status": "deleted"}):
        refused = api.get(url, params=params, timeout=scaled(5))
        assert refused.status_code == 400, params
        assert refused.json()["errors"][0]["field"] == next(iter(params))
    assert api.get(f"{mc.url}/3.0/lists/ffffffffff/members", timeout=scaled(5)).status_code == 404


def test_more_simultaneous_requests_than_the_cap_get_429(mc: MailchimpEmulator) -> None:
    mc.latency_seconds = 1.0

    def ping(_: int) -> int:
        return requests.get(f"{mc.url}/3.0/ping", auth=("x", KEY), timeout=scaled(10)).status_code

    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = list(pool.map(ping, range(15)))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 5
    assert mc.in_flight == 0
    assert mc.peak_connections > 10 and mc.refused_connections == 5  # what a test reads
    mc.latency_seconds = 0.0
    assert requests.get(f"{mc.url}/3.0/ping", auth=("x", KEY), timeout=scaled(5)).status_code == 200


def test_creating_a_webhook_sends_mailchimps_validation_get(mc: MailchimpEmulator,
                                                            receiver: Receiver) -> None:
    mc.configure_webhook(receiver.url)
    assert [method for method, _, _ in receiver.requests] == ["GET"]


def test_a_webhook_url_that_does_not_answer_200_is_refused(mc: MailchimpEmulator,
                                                           api: requests.Session) -> None:
    with pytest.raises(RuntimeError):
        mc.configure_webhook(f"{mc.url}/no-such-hook")
    response = api.post(f"{mc.url}/3.0/lists/{LIST}/webhooks", timeout=scaled(5),
                        json={"url": f"{mc.url}/no-such-hook"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "url"


def test_a_footer_unsubscribe_arrives_form_encoded_with_php_keys(mc: MailchimpEmulator,
                                                                 receiver: Receiver) -> None:
    mc.add_member("x@example.com", merge_fields={"FNAME": "Xe"})
    mc.configure_webhook(receiver.url)
    mc.user_unsubscribe("x@example.com")
    assert mc.flush_webhooks()
    method, headers, _ = receiver.requests[-1]
    assert method == "POST"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    event = receiver.posts()[0]
    assert event["type"] == "unsubscribe"
    assert event["data[action]"] == "unsub" and event["data[reason]"] == "manual"
    assert event["data[email]"] == event["data[merges][EMAIL]"] == "x@example.com"
    assert event["data[merges][FNAME]"] == "Xe"
    assert event["data[list_id]"] == LIST
    assert {"data[id]", "data[ip_opt]", "data[email_type]"} <= set(event)
    assert len(event["fired_at"]) == 19 and event["fired_at"][10] == " "
    assert mc.member("x@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_people_and_admins_actions_fire_their_event_types(mc: MailchimpEmulator,
                                                          receiver: Receiver) -> None:
    mc.add_member("y@example.com")
    mc.add_member("z@example.com")
    mc.configure_webhook(receiver.url)
    mc.user_update_profile("y@example.com", FNAME="Yo")
    mc.user_change_email("y@example.com", "y2@example.com")
    mc.mark_cleaned("z@example.com", reason="abuse")
    mc.user_subscribe("w@example.com")
    assert mc.flush_webhooks()
    events = receiver.posts()
    assert [e["type"] for e in events] == ["profile", "upemail", "cleaned", "subscribe"]
    assert events[0]["data[merges][FNAME]"] == "Yo"
    assert (events[1]["data[old_email]"], events[1]["data[new_email]"]) == ("y@example.com",
                                                                             "y2@example.com")
    assert events[2]["data[reason]"] == "abuse"
    assert mc.member("y2@example.com") is not None and mc.member("y@example.com") is None


def test_api_writes_are_not_sent_when_the_webhook_excludes_the_api_source(
        mc: MailchimpEmulator, api: requests.Session, receiver: Receiver) -> None:
    mc.add_member("a@example.com")
    mc.configure_webhook(receiver.url, sources=("user", "admin"))
    api.patch(member_url(mc, "a@example.com"), json={"status": "unsubscribed"}, timeout=scaled(5))
    mc.user_subscribe("b@example.com")
    assert mc.flush_webhooks()
    assert [e["type"] for e in receiver.posts()] == ["subscribe"]
    assert receiver.posts()[0]["data[email]"] == "b@example.com"


def test_api_writes_are_sent_when_the_api_source_is_enabled(
        mc: MailchimpEmulator, api: requests.Session, receiver: Receiver) -> None:
    mc.add_member("a@example.com")
    created = api.post(f"{mc.url}/3.0/lists/{LIST}/webhooks", timeout=scaled(5), json={
        "url": receiver.url, "sources": {"user": True, "admin": True, "api": True}})
    assert created.status_code == 200 and created.json()["sources"]["api"] is True
    api.patch(member_url(mc, "a@example.com"), json={"status": "unsubscribed"}, timeout=scaled(5))
    api.delete(member_url(mc, "a@example.com"), timeout=scaled(5))
    assert mc.flush_webhooks()
    assert [(e["type"], e["data[action]"]) for e in receiver.posts()] == [
        ("unsubscribe", "unsub"), ("unsubscribe", "delete")]


def test_a_failing_receiver_is_retried_until_it_answers_2xx(mc: MailchimpEmulator,
                                                            receiver: Receiver) -> None:
    mc.add_member("r@example.com")
    mc.configure_webhook(receiver.url)
    receiver.post_statuses = [500, 503]
    mc.user_unsubscribe("r@example.com")
    assert mc.flush_webhooks()
    delivery = mc.webhook_deliveries[-1]
    assert (delivery.event_type, delivery.status, delivery.attempts) == ("unsubscribe", 200, 3)
    assert len(receiver.posts()) == 3


# -- the member path's three forms, strict bodies, wrong methods ---------------------------
def test_a_member_path_takes_the_hash_the_address_or_the_contact_id(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    mc.add_member("Three.Forms@example.com", merge_fields={"FNAME": "T"})
    contact_id = mc.member("three.forms@example.com")["contact_id"]  # type: ignore[index]
    base = f"{mc.url}/3.0/lists/{LIST}/members"
    for key in (subscriber_hash("three.forms@example.com"), "Three.Forms@example.com",
                "three.forms%40example.com", contact_id):
        read = api.get(f"{base}/{key}", params={"fields": "email_address"}, timeout=scaled(5))
        assert read.status_code == 200, key
        assert read.json() == {"email_address": "Three.Forms@example.com"}
    patched = api.patch(f"{base}/{contact_id}", json={"merge_fields": {"FNAME": "C"}},
                        timeout=scaled(5))
    assert patched.status_code == 200
    put = api.put(f"{base}/three.forms@example.com", timeout=scaled(5), json={
        "email_address": "three.forms@example.com", "status_if_new": "subscribed",
        "status": "unsubscribed"})
    assert put.status_code == 200 and put.json()["status"] == "unsubscribed"
    gone = api.post(f"{base}/Three.Forms@example.com/actions/delete-permanent", timeout=scaled(5))
    assert gone.status_code == 204
    assert api.get(f"{base}/{contact_id}", timeout=scaled(5)).status_code == 404


def test_put_adds_a_member_under_its_address_but_refuses_another_address(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    base = f"{mc.url}/3.0/lists/{LIST}/members"
    added = api.put(f"{base}/new.one@example.com", timeout=scaled(5), json={
        "email_address": "new.one@example.com", "status_if_new": "pending"})
    assert added.status_code == 200 and added.json()["status"] == "pending"
    other = api.put(f"{base}/{subscriber_hash('someone.else@example.com')}", timeout=scaled(5),
                    json={"email_address": "new.two@example.com", "status_if_new": "pending"})
    assert other.status_code == 400
    assert other.json()["errors"][0]["field"] == "email_address"


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "gone"}, "status"),                      # not in the enum
    ({"status": "unsubscribed", "colour": "red"}, "colour"),  # unknown property
    ({"vip": "yes"}, "vip"),                             # wrong type
    ({"merge_fields": {"FNAME": ["a"]}}, "merge_fields.FNAME"),
    ({"timestamp_opt": "2026-03-01T10:00:00"}, "timestamp_opt"),  # no zone
])
def test_a_patch_outside_the_member_schema_is_an_invalid_resource_naming_the_field(
        mc: MailchimpEmulator, api: requests.Session, body: dict[str, Any], field: str) -> None:
    mc.add_member("strict@example.com")
    response = api.patch(member_url(mc, "strict@example.com"), json=body, timeout=scaled(5))
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Invalid Resource"
    assert any(e["field"].startswith(field) for e in problem["errors"])
    assert mc.member("strict@example.com")["status"] == "subscribed"  # type: ignore[index]


def test_a_body_that_is_not_json_is_refused(mc: MailchimpEmulator,
                                            api: requests.Session) -> None:
    mc.add_member("typed@example.com")
    response = api.patch(member_url(mc, "typed@example.com"), data="status=unsubscribed",
                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                         timeout=scaled(5))
    assert response.status_code == 400
    assert response.json()["title"] == "JSON Parse Error"


def test_a_method_a_path_does_not_take_is_405_method_not_allowed(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    for method, path in (("DELETE", f"/lists/{LIST}"), ("PUT", "/ping"),
                         ("GET", f"/lists/{LIST}/members/x%40y.com/actions/delete-permanent")):
        response = api.request(method, f"{mc.url}/3.0{path}", timeout=scaled(5))
        assert response.status_code == 405, path
        assert response.json()["title"] == "Method Not Allowed"


def test_a_batch_entry_without_an_address_or_a_new_one_without_a_status_is_error_generic(
        mc: MailchimpEmulator, api: requests.Session) -> None:
    body = api.post(f"{mc.url}/3.0/lists/{LIST}", timeout=scaled(5), json={
        "update_existing": True, "members": [
            {"status": "unsubscribed"}, {"email_address": "no.status@example.com"}]}).json()
    assert [(e["error_code"], e["field"]) for e in body["errors"]] == [
        ("ERROR_GENERIC", "email_address"), ("ERROR_GENERIC", "status")]


def test_the_webhooks_read_lists_each_with_its_event_and_source_flags(
        mc: MailchimpEmulator, api: requests.Session, receiver: Receiver) -> None:
    created = api.post(f"{mc.url}/3.0/lists/{LIST}/webhooks", timeout=scaled(5), json={
        "url": receiver.url, "events": {"campaign": False, "sms_campaign": False},
        "sources": {"api": False}})
    assert created.status_code == 200
    [hook] = api.get(f"{mc.url}/3.0/lists/{LIST}/webhooks", timeout=scaled(5)).json()["webhooks"]
    assert hook["id"] == created.json()["id"]
    assert hook["events"]["sms_unsubscribe"] is True and hook["events"]["campaign"] is False
    assert hook["sources"] == {"admin": True, "api": False, "user": True}
    refused = api.post(f"{mc.url}/3.0/lists/{LIST}/webhooks", timeout=scaled(5),
                       json={"url": receiver.url, "events": {"sms_stop": True}})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "events.sms_stop"


def test_a_stop_reply_arrives_as_an_sms_unsubscribe_form_post(mc: MailchimpEmulator,
                                                               receiver: Receiver) -> None:
    mc.add_member("texter@example.com")
    mc.configure_webhook(receiver.url)
    mc.user_sms_subscribe("texter@example.com", "+15555550123")
    mc.user_sms_unsubscribe("texter@example.com")
    assert mc.flush_webhooks()
    sub, unsub = receiver.posts()
    assert sub["type"] == "sms_subscribe" and unsub["type"] == "sms_unsubscribe"
    assert unsub["data[email]"] == "texter@example.com"
    assert unsub["data[list_id]"] == LIST
    assert mc.member("texter@example.com")["sms_subscription_status"] == (  # type: ignore[index]
        "unsubscribed")
