"""Meta webhook notifications become SourceItems; bad shapes and bad signatures are refused.

Payloads follow the shapes in PLATFORM-FACTS.md §D.1 (Page `feed`) and §D.3 (Instagram
`comments`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.config.organisation import FacebookPageSourceConfig, InstagramSourceConfig
from bot.core.sources import ItemAction, ItemKind
from bot.sources.meta import MalformedPayload, parse_notification, verify_signature

PAGE_ID = "104000000000001"
IG_ID = "17841400000000001"
POST_ID = f"{PAGE_ID}_2200000000000001"
COMMENT_ID = "2200000000000001_3300000000000001"
CREATED = 1772445600  # 2026-03-02T10:00:00Z

FB = FacebookPageSourceConfig(id="fb-main", kind="facebook_page", page_id=PAGE_ID)
IG = InstagramSourceConfig(id="ig-main", kind="instagram", account_id=IG_ID)
SOURCES: list[FacebookPageSourceConfig | InstagramSourceConfig] = [FB, IG]


def page_change(value: dict[str, Any], page_id: str = PAGE_ID) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [
            {"id": page_id, "time": CREATED + 2, "changes": [{"field": "feed", "value": value}]}
        ],
    }


def comment_value(**changes: Any) -> dict[str, Any]:
    value = {
        "from": {"id": "7100000000000001", "name": "Ada Visitor"},
        "post": {
            "status_type": "added_photos",
            "is_published": True,
            "updated_time": "2026-03-02T10:00:01+0000",
            "permalink_url": f"https://www.facebook.com/{POST_ID}",
            "promotion_status": "inactive",
            "id": POST_ID,
        },
        "message": "Does the starter plan include SSO?",
        "post_id": POST_ID,
        "comment_id": COMMENT_ID,
        "created_time": CREATED,
        "item": "comment",
        "parent_id": POST_ID,
        "verb": "add",
    }
    value.update(changes)
    return value


def ig_change(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [
            {"id": IG_ID, "time": CREATED, "changes": [{"field": "comments", "value": value}]}
        ],
    }


def only(payload: dict[str, Any], **kwargs: Any) -> Any:
    items = parse_notification(payload, SOURCES, **kwargs)
    assert len(items) == 1, items
    return items[0]


# -- Facebook Page feed --------------------------------------------------------------------------


def test_visitor_comment_becomes_a_comment_item() -> None:
    item = only(page_change(comment_value()))
    assert item.source_id == "fb-main"
    assert item.external_id == COMMENT_ID
    assert item.kind is ItemKind.COMMENT
    assert item.action is ItemAction.ADD
    assert item.text == "Does the starter plan include SSO?"
    assert item.parent_id == POST_ID
    assert item.thread_id == POST_ID
    assert item.author_id == "7100000000000001"
    assert item.author_name == "Ada Visitor"
    assert item.by_page is False
    assert item.posted_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert item.url == f"https://www.facebook.com/{POST_ID}?comment_id={COMMENT_ID}"


def test_reply_to_a_comment_is_a_reply() -> None:
    reply_id = "2200000000000001_3300000000000002"
    item = only(page_change(comment_value(comment_id=reply_id, parent_id=COMMENT_ID)))
    assert item.kind is ItemKind.REPLY
    assert item.external_id == reply_id
    assert item.parent_id == COMMENT_ID
    assert item.thread_id == POST_ID


def test_page_own_comment_is_flagged_by_page() -> None:
    value = comment_value(**{"from": {"id": PAGE_ID, "name": "Example Brand"}})
    item = only(page_change(value))
    assert item.by_page is True
    assert item.author_name == "Example Brand"


@pytest.mark.parametrize(
    ("verb", "action"),
    [
        ("add", ItemAction.ADD),
        ("edited", ItemAction.EDIT),
        ("edit", ItemAction.EDIT),
        ("remove", ItemAction.REMOVE),
        ("hide", ItemAction.REMOVE),
        ("unhide", ItemAction.ADD),
    ],
)
def test_comment_verbs_map_to_actions(verb: str, action: ItemAction) -> None:
    assert only(page_change(comment_value(verb=verb))).action is action


def test_removed_comment_without_message_has_empty_text() -> None:
    value = comment_value(verb="remove")
    del value["message"]
    item = only(page_change(value))
    assert item.action is ItemAction.REMOVE
    assert item.text == ""
    assert item.external_id == COMMENT_ID


def test_edited_comment_keeps_its_id_and_takes_the_new_text() -> None:
    item = only(page_change(comment_value(verb="edited", message="Edit: and SCIM?")))
    assert (item.external_id, item.action, item.text) == (
        COMMENT_ID,
        ItemAction.EDIT,
        "Edit: and SCIM?",
    )


@pytest.mark.parametrize("item_type", ["status", "post", "photo", "video", "share"])
def test_visitor_post_becomes_a_post_item(item_type: str) -> None:
    value = {
        "from": {"id": "7100000000000009", "name": "Grace Visitor"},
        "message": "Is there a student discount?",
        "post_id": POST_ID,
        "created_time": CREATED,
        "item": item_type,
        "published": 1,
        "verb": "add",
        "link": "https://cdn.example.net/attachment.jpg",
    }
    item = only(page_change(value))
    assert item.kind is ItemKind.POST
    assert item.external_id == POST_ID
    assert item.thread_id == POST_ID
    assert item.parent_id is None
    assert item.by_page is False
    assert item.text == "Is there a student discount?"
    # `link` is the attachment, not the post.
    assert item.url == f"https://www.facebook.com/{POST_ID}"


def test_page_status_is_by_page_and_uses_permalink() -> None:
    value = {
        "from": {"id": PAGE_ID, "name": "Example Brand"},
        "message": "We are live!",
        "post_id": POST_ID,
        "created_time": CREATED,
        "item": "status",
        "verb": "edited",
        "permalink_url": "https://www.facebook.com/examplebrand/posts/42",
    }
    item = only(page_change(value))
    assert (item.by_page, item.action) == (True, ItemAction.EDIT)
    assert item.url == "https://www.facebook.com/examplebrand/posts/42"


@pytest.mark.parametrize(
    "value",
    [
        {"item": "reaction", "verb": "add", "reaction_type": "like", "post_id": POST_ID},
        {"item": "like", "verb": "add", "post_id": POST_ID},
        {"item": "comment", "verb": "block", "post_id": POST_ID, "comment_id": COMMENT_ID},
        {"item": "event", "verb": "add"},
    ],
)
def test_reactions_likes_and_untracked_changes_are_ignored(value: dict[str, Any]) -> None:
    assert parse_notification(page_change(value), SOURCES) == []


@pytest.mark.parametrize(
    "created",
    [
        CREATED,
        str(CREATED),
        "2026-03-02T10:00:00+0000",
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00+01:00",
    ],
)
def test_created_time_as_unix_or_iso_string(created: object) -> None:
    item = only(page_change(comment_value(created_time=created)))
    assert item.posted_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_unreadable_created_time_leaves_posted_at_empty() -> None:
    assert only(page_change(comment_value(created_time="yesterday"))).posted_at is None


def test_ids_are_strings_and_text_must_be_a_string() -> None:
    value = comment_value(
        post_id=2200000000000001,
        comment_id=3300000000000001,
        parent_id=2200000000000001,
        message={"not": "text"},
        **{"from": {"id": 7100000000000001, "name": 5}},
    )
    item = only(page_change(value))
    assert item.external_id == "3300000000000001"
    assert item.parent_id == "2200000000000001"
    assert item.kind is ItemKind.COMMENT
    assert item.author_id == "7100000000000001"
    assert item.author_name is None
    assert item.text == ""


def test_several_entries_and_changes_in_one_delivery() -> None:
    payload = page_change(comment_value())
    payload["entry"][0]["changes"].append(
        {"field": "feed", "value": comment_value(comment_id="c-2", message="second")}
    )
    payload["entry"].append(page_change(comment_value(comment_id="c-3"))["entry"][0])
    ids = [item.external_id for item in parse_notification(payload, SOURCES)]
    assert ids == [COMMENT_ID, "c-2", "c-3"]


def test_unknown_page_is_skipped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.sources.meta"):
        items = parse_notification(page_change(comment_value(), page_id="999"), SOURCES)
    assert items == []
    assert "999" in caplog.text


def test_disabled_source_is_treated_as_unknown() -> None:
    disabled = FB.model_copy(update={"enabled": False})
    assert parse_notification(page_change(comment_value()), [disabled]) == []


def test_instagram_account_id_does_not_match_page_notifications() -> None:
    assert parse_notification(page_change(comment_value(), page_id=IG_ID), SOURCES) == []


def test_other_objects_and_fields_are_ignored() -> None:
    assert parse_notification({"object": "user", "entry": [{"id": "1"}]}, SOURCES) == []
    mention = page_change(comment_value())
    mention["entry"][0]["changes"][0]["field"] = "mention"
    assert parse_notification(mention, SOURCES) == []
    messaging = {"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "messaging": []}]}
    assert parse_notification(messaging, SOURCES) == []


# -- Instagram comments --------------------------------------------------------------------------


def ig_value(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "from": {"id": "232323232", "username": "curious.cat"},
        "media": {"id": "17900000000000001", "media_product_type": "FEED"},
        "id": "17860000000000001",
        "text": "What size is the model wearing?",
    }
    value.update(changes)
    return value


def test_instagram_comment_without_parent_is_a_comment() -> None:
    item = only(ig_change(ig_value()))
    assert item.source_id == "ig-main"
    assert item.external_id == "17860000000000001"
    assert item.kind is ItemKind.COMMENT
    assert item.parent_id == "17900000000000001"
    assert item.thread_id == "17900000000000001"
    assert item.author_name == "curious.cat"
    assert item.by_page is False
    assert item.text == "What size is the model wearing?"
    assert item.posted_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_instagram_comment_with_parent_is_a_reply() -> None:
    item = only(ig_change(ig_value(id="17860000000000002", parent_id="17860000000000001")))
    assert item.kind is ItemKind.REPLY
    assert item.parent_id == "17860000000000001"
    assert item.thread_id == "17900000000000001"


def test_instagram_reply_by_the_account_is_by_page() -> None:
    by_id = ig_value(parent_id="1786", **{"from": {"id": IG_ID, "username": "examplebrand"}})
    assert only(ig_change(by_id)).by_page is True
    by_name = ig_value(parent_id="1786", **{"from": {"id": "555", "username": "examplebrand"}})
    assert only(ig_change(by_name)).by_page is False
    assert only(ig_change(by_name), usernames={"ig-main": "examplebrand"}).by_page is True


def test_instagram_album_comment_without_media_still_parses() -> None:
    value = ig_value()
    del value["media"]
    item = only(ig_change(value))
    assert (item.thread_id, item.parent_id) == (None, None)


# -- malformed payloads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ([], "notification"),
        ("page", "notification"),
        ({"entry": []}, "'object'"),
        ({"object": "page"}, "'entry'"),
        ({"object": "page", "entry": {"id": PAGE_ID}}, "'entry'"),
        ({"object": "page", "entry": ["x"]}, "entry"),
        ({"object": "page", "entry": [{"time": 1, "changes": []}]}, "'id'"),
        ({"object": "page", "entry": [{"id": PAGE_ID, "changes": {}}]}, "'changes'"),
        ({"object": "page", "entry": [{"id": PAGE_ID, "changes": ["feed"]}]}, "change"),
        ({"object": "page", "entry": [{"id": PAGE_ID, "changes": [{"value": {}}]}]}, "'field'"),
        ({"object": "page", "entry": [{"id": PAGE_ID, "changes": [{"field": "feed"}]}]}, "value"),
        (page_change(comment_value(comment_id=None)), "comment_id"),
        (page_change(comment_value(post_id="")), "post_id"),
        (ig_change(ig_value(id=None)), "'id'"),
    ],
)
def test_malformed_payloads_are_refused(payload: object, complaint: str) -> None:
    with pytest.raises(MalformedPayload, match=complaint):
        parse_notification(payload, SOURCES)


def test_malformed_payload_is_a_value_error() -> None:
    assert issubclass(MalformedPayload, ValueError)


# -- signatures --------------------------------------------------------------------------------

SECRET = "meta-app-secret-0123456789"
BODY = json.dumps(
    page_change(comment_value(message="caf\u00e9 \u2615")), ensure_ascii=True
).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_good_signature_is_accepted() -> None:
    assert verify_signature(SECRET, BODY, sign(BODY)) is True


def test_signature_made_with_another_secret_is_refused() -> None:
    assert verify_signature(SECRET, BODY, sign(BODY, "another-secret")) is False


def test_missing_signature_is_refused() -> None:
    assert verify_signature(SECRET, BODY, None) is False
    assert verify_signature(SECRET, BODY, "") is False


def test_signature_with_wrong_prefix_is_refused() -> None:
    digest = sign(BODY).removeprefix("sha256=")
    assert verify_signature(SECRET, BODY, f"sha1={digest}") is False
    assert verify_signature(SECRET, BODY, digest) is False


def test_body_altered_by_one_byte_is_refused() -> None:
    altered = bytearray(BODY)
    altered[-2] ^= 0x01
    assert verify_signature(SECRET, bytes(altered), sign(BODY)) is False


def test_re_encoded_json_does_not_match_the_raw_body() -> None:
    # Meta signs the bytes it sent (unicode escaped); decoding and re-encoding changes them.
    reencoded = json.dumps(json.loads(BODY), ensure_ascii=False).encode()
    assert reencoded != BODY
    assert verify_signature(SECRET, reencoded, sign(BODY)) is False


def test_empty_secret_never_verifies() -> None:
    assert verify_signature("", BODY, sign(BODY, "")) is False


def test_garbage_header_is_refused_without_error() -> None:
    assert verify_signature(SECRET, BODY, "sha256=\u00e9\u00e9") is False
