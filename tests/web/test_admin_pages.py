"""The admin page and the alerts page over HTTP: admins only, and each user's own alerts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.conftest import Gateway
from tests.support.server import make_user_and_key
from tests.web.pages import (
    ADMIN_EMAIL,
    chat,
    csrf_token,
    insert_rows,
    make_admin,
    query,
    signed_in,
)
from vaultgate.storage.tables import notifications


def test_admin_page_non_admin_gets_403_and_no_nav_link(gateway: Gateway) -> None:
    with signed_in(gateway.base_url, "user@example.com") as client:
        admin = client.get("/dashboard/admin")
        logs = client.get("/dashboard/logs")

    assert admin.status_code == 403
    assert "Admins only." in admin.text
    assert 'href="/dashboard/admin"' not in logs.text
    assert 'href="/dashboard/analytics"' in logs.text


def test_admin_page_lists_users_balances_and_deployment_health(gateway: Gateway) -> None:
    assert chat(gateway.base_url, gateway.key, "fake-plain-text") == 200
    make_admin(gateway.database_url)

    with signed_in(gateway.base_url, ADMIN_EMAIL) as client:
        response = client.get("/dashboard/admin")

    assert response.status_code == 200
    users = response.text.split('data-testid="users"')[1].split("</table>")[0]
    assert "user@example.com" in users
    assert ADMIN_EMAIL in users
    assert "$99.99" in users
    health = response.text.split('data-testid="deployments"')[1].split("</table>")[0]
    assert "fake-plain-text" in health
    assert "fake-backup" in health
    assert "health-closed" in health
    assert 'href="/dashboard/models"' in response.text
    assert 'href="/dashboard/admin"' in response.text


def _notify(database_url: str, user_id: int, message: str) -> None:
    insert_rows(database_url, notifications, [{
        "user_id": user_id, "kind": "low_balance", "subject_id": user_id, "threshold": "0.1",
        "message": message, "created_at": dt.datetime.now(dt.UTC),
    }])  # fmt: skip


def test_alerts_page_lists_own_alerts_and_marks_them_read(gateway: Gateway) -> None:
    other, _, _ = make_user_and_key(gateway.database_url, email="other@example.com")
    _notify(gateway.database_url, gateway.user_id, "Your balance is low (mine).")
    _notify(gateway.database_url, other.id, "Your balance is low (theirs).")

    with signed_in(gateway.base_url, "user@example.com") as client:
        page = client.get("/dashboard/alerts")
        forged = client.post("/dashboard/alerts", data={"id": "all"})
        marked = client.post("/dashboard/alerts", data={
            "id": "all", "csrf_token": csrf_token(page.text)})  # fmt: skip
        after = client.get("/dashboard/alerts")

    assert "(mine)" in page.text
    assert "(theirs)" not in page.text
    assert "Mark read" in page.text
    assert "VAULTGATE_ALERT_QUOTA_PERCENTS" in page.text
    assert "80%, 100%" in page.text
    assert forged.status_code == 403
    assert marked.status_code == 303
    assert "Mark read" not in after.text
    read = query(gateway.database_url, select(notifications.c.user_id, notifications.c.read_at))
    assert {user_id: read_at is not None for user_id, read_at in read} == {
        gateway.user_id: True, other.id: False}  # fmt: skip
