"""Roles: staff look after patients; admins also manage staff, keys and read the audit trail."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from reminders.models import ApiKey, StaffUser
from reminders.staff import verify_password
from tests.web.conftest import PASSWORD, Site, TestClient, csrf, signed_in_client

ADMIN, STAFF = "ada@riverside.example", "sam@riverside.example"
ADMIN_PAGES = ["/clinic/staff", "/clinic/keys", "/clinic/audit"]


@pytest.fixture
def clinic_site(any_data: Site) -> Site:
    clinic = any_data.clinic("Riverside Dermatology", email=ADMIN, role="admin")
    any_data.user(clinic, STAFF)
    return any_data


def users(site: Site) -> dict[str, StaffUser]:
    with Session(site.rt.engine) as session:
        return {user.email: user for user in session.exec(select(StaffUser)).all()}


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_a_staff_user_gets_403_on_admin_pages(clinic_site: Site, path: str) -> None:
    client = signed_in_client(clinic_site.rt, STAFF)
    with client:
        page = client.get(path)
        # /clinic/audit takes no form: only the others are posted to.
        posted = client.post(path, data={"csrf_token": csrf(client, "/clinic")})
        patients = client.get("/clinic/patients")
    assert page.status_code == 403
    assert posted.status_code == (405 if path == "/clinic/audit" else 403)
    assert "This page is for the clinic's admins" in page.text
    assert patients.status_code == 200
    assert 'href="/clinic/staff"' not in patients.text


def test_a_staff_user_cannot_disable_anyone(clinic_site: Site) -> None:
    admin_id = users(clinic_site)[ADMIN].id
    client = signed_in_client(clinic_site.rt, STAFF)
    with client:
        token = csrf(client, "/clinic")
        response = client.post(f"/clinic/staff/{admin_id}/disable", data={"csrf_token": token})
    assert response.status_code == 403
    assert users(clinic_site)[ADMIN].disabled_at is None


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_an_admin_sees_the_admin_pages(clinic_site: Site, path: str) -> None:
    client = signed_in_client(clinic_site.rt, ADMIN)
    with client:
        response = client.get(path)
    assert response.status_code == 200
    assert 'href="/clinic/staff"' in response.text


def admin_post(client: TestClient, path: str, **form: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf(client, "/clinic/staff"), **form})


def test_an_admin_adds_a_staff_member_who_can_sign_in(clinic_site: Site) -> None:
    client = signed_in_client(clinic_site.rt, ADMIN)
    with client:
        added = admin_post(
            client,
            "/clinic/staff",
            email="kim@riverside.example",
            role="staff",
            password="another long passphrase",
        )
    assert added.status_code == 303
    kim = users(clinic_site)["kim@riverside.example"]
    assert kim.role == "staff" and verify_password("another long passphrase", kim.password_hash)


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "must be 12"), ("Qwerty123456", "one of the most common passwords")],
)
def test_a_short_or_common_password_is_refused(
    clinic_site: Site, password: str, reason: str
) -> None:
    client = signed_in_client(clinic_site.rt, ADMIN)
    with client:
        refused = admin_post(
            client, "/clinic/staff", email="kim@riverside.example", role="staff", password=password
        )
    assert refused.status_code == 422
    assert reason in refused.text
    assert "kim@riverside.example" not in users(clinic_site)


def test_an_admin_disables_enables_and_resets_a_password(clinic_site: Site) -> None:
    sam_id = users(clinic_site)[STAFF].id
    sam = signed_in_client(clinic_site.rt, STAFF)
    admin = signed_in_client(clinic_site.rt, ADMIN)
    with admin, sam:
        disabled = admin_post(admin, f"/clinic/staff/{sam_id}/disable")
        assert sam.get("/clinic/patients").status_code == 303  # signed out at once
        assert users(clinic_site)[STAFF].disabled_at is not None
        enabled = admin_post(admin, f"/clinic/staff/{sam_id}/enable")
        assert users(clinic_site)[STAFF].disabled_at is None
        reset = admin_post(
            admin, f"/clinic/staff/{sam_id}/password", password="a fresh long passphrase"
        )
    assert [r.status_code for r in (disabled, enabled, reset)] == [303, 303, 303]
    assert verify_password("a fresh long passphrase", users(clinic_site)[STAFF].password_hash)


def test_an_admin_cannot_disable_their_own_account(clinic_site: Site) -> None:
    admin_id = users(clinic_site)[ADMIN].id
    client = signed_in_client(clinic_site.rt, ADMIN)
    with client:
        refused = admin_post(client, f"/clinic/staff/{admin_id}/disable")
    assert refused.status_code == 422
    assert "you cannot disable your own account" in refused.text
    assert users(clinic_site)[ADMIN].disabled_at is None


def test_an_admin_signs_a_colleague_out_everywhere(clinic_site: Site) -> None:
    sam_id = users(clinic_site)[STAFF].id
    sam = signed_in_client(clinic_site.rt, STAFF)
    admin = signed_in_client(clinic_site.rt, ADMIN)
    with admin, sam:
        assert admin_post(admin, f"/clinic/staff/{sam_id}/sign-out").status_code == 303
        assert sam.get("/clinic/patients").status_code == 303
        assert admin.get("/clinic/patients").status_code == 200


def test_another_clinics_admin_cannot_touch_this_clinics_staff(clinic_site: Site) -> None:
    clinic_site.clinic("Hillside Skin Care", email="lee@hillside.example", role="admin")
    sam_id = users(clinic_site)[STAFF].id
    client = signed_in_client(clinic_site.rt, "lee@hillside.example")
    with client:
        refused = admin_post(client, f"/clinic/staff/{sam_id}/disable")
        listed = client.get("/clinic/staff")
    assert refused.status_code == 404
    assert STAFF not in listed.text
    assert users(clinic_site)[STAFF].disabled_at is None


def test_an_admin_creates_a_key_shown_once_and_revokes_it(clinic_site: Site) -> None:
    client = signed_in_client(clinic_site.rt, ADMIN)
    with client:
        token = csrf(client, "/clinic/keys")
        created = client.post("/clinic/keys", data={"csrf_token": token, "name": "ehr-sync"})
        again = client.get("/clinic/keys")
    assert created.status_code == 201
    key = re.search(r'<code id="new-key">(rk_[^<]+)</code>', created.text)
    assert key is not None
    assert key.group(1) not in again.text  # shown once
    with Session(clinic_site.rt.engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.name == "ehr-sync")).one()
    assert key.group(1) not in row.key_hash
    with client:
        revoked = client.post(
            f"/clinic/keys/{row.id}/revoke", data={"csrf_token": csrf(client, "/clinic/keys")}
        )
    assert revoked.status_code == 303
    with Session(clinic_site.rt.engine) as session:
        assert session.get(ApiKey, row.id).revoked_at is not None  # type: ignore[union-attr]


def test_the_sign_in_password_of_the_fixture_is_not_a_common_one() -> None:
    from reminders.staff import password_errors

    assert password_errors(PASSWORD) == []
