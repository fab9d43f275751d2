"""API keys per integration: several per clinic, kept as hashes, revoked one by one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import Session
from typer.testing import CliRunner

from reminders.cli import app
from reminders.config import get_settings
from reminders.db import session_scope
from reminders.models import ApiKey
from reminders.services import create_api_key, revoke_api_key, rotate_api_key
from tests.api.conftest import Api
from tests.conftest import NOW


def add_key(api: Api, name: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    with session_scope(api.rt.engine) as session:
        return create_api_key(
            session,
            clinic_id=api.clinic.id,  # type: ignore[arg-type]
            name=name,
            admin=admin,
            now=NOW,
        )


def test_a_revoked_key_answers_401_while_another_key_works(api: Api) -> None:
    row, ehr = add_key(api, "ehr-sync")
    _row, forms = add_key(api, "intake-forms")
    assert api.get("/v1/patients", ehr).status_code == 200
    with session_scope(api.rt.engine) as session:
        revoke_api_key(session, clinic_id=api.clinic.id, key_id=row.id, now=NOW)  # type: ignore[arg-type]
    revoked = api.get("/v1/patients", ehr)
    assert revoked.status_code == 401
    assert "unknown or revoked API key" in revoked.json()["message"]
    assert api.get("/v1/patients", forms).status_code == 200
    assert api.get("/v1/patients").status_code == 200  # the clinic's first key too


def test_keys_are_stored_only_as_hashes_and_note_their_last_use(api: Api) -> None:
    row, key = add_key(api, "ehr-sync")
    with Session(api.rt.engine) as session:
        stored = session.get(ApiKey, row.id)
        assert stored is not None and stored.last_used_at is None
        assert key not in stored.key_hash and len(stored.key_hash) == 64
    api.get("/v1/patients", key)
    with Session(api.rt.engine) as session:
        used = session.get(ApiKey, row.id)
        assert used is not None and used.last_used_at is not None


def test_a_key_name_is_unique_among_the_clinics_live_keys(api: Api) -> None:
    from reminders.validation import InvalidInput

    add_key(api, "ehr-sync")
    with pytest.raises(InvalidInput, match="already has a key named"):
        add_key(api, "ehr-sync")
    with pytest.raises(InvalidInput, match="name: contains a control"):
        add_key(api, "ehr\x1bsync")


def test_rotating_replaces_the_default_key_and_leaves_the_others(api: Api) -> None:
    _row, ehr = add_key(api, "ehr-sync")
    with session_scope(api.rt.engine) as session:
        new = rotate_api_key(session, clinic_id=api.clinic.id, now=NOW)  # type: ignore[arg-type]
    assert api.get("/v1/patients").status_code == 401
    assert api.get("/v1/patients", new).status_code == 200
    assert api.get("/v1/patients", ehr).status_code == 200


def test_a_staff_key_may_not_erase_nor_read_the_audit_trail(api: Api) -> None:
    _row, staff_key = add_key(api, "ehr-sync")
    patient = api.enroll()
    erase = api.client.delete(f"/v1/patients/{patient['id']}", headers=api.auth(staff_key))
    audit = api.get("/v1/audit", staff_key)
    assert (erase.status_code, audit.status_code) == (403, 403)
    assert "admin key" in audit.json()["message"]
    assert api.get("/v1/audit").status_code == 200  # the clinic's first key is an admin key


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield runner
    root.handlers[:], root.level = handlers, level
    get_settings.cache_clear()


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_clinic_key_add_list_and_revoke(cli: CliRunner) -> None:
    with freeze_time(NOW) as clock:
        first = json.loads(
            run(
                cli,
                "clinic",
                "add",
                "--name",
                "Riverside",
                "--help-contact",
                "(212) 555-0100",
                "--format",
                "json",
            )
        )
        added = json.loads(
            run(cli, "clinic", "key", "add", "--clinic", "1", "--name", "ehr", "--format", "json")
        )
        assert added["api_key"].startswith("rk_") and added["api_key"] != first["api_key"]
        clock.tick(timedelta(minutes=1))
        run(cli, "clinic", "key", "revoke", str(added["id"]), "--clinic", "1")
        listed = json.loads(run(cli, "clinic", "key", "list", "--clinic", "1", "--format", "json"))
    assert [(key["name"], key["admin"]) for key in listed] == [("default", True), ("ehr", False)]
    assert listed[0]["revoked_at"] is None and listed[1]["revoked_at"] is not None
    assert not any(added["api_key"] in json.dumps(key) for key in listed)
    audit = json.loads(run(cli, "audit", "--clinic", "1", "--format", "json"))
    assert [entry["action"] for entry in audit["items"]] == ["key.revoke", "key.create"]


def test_revoking_another_clinics_key_is_not_found(cli: CliRunner) -> None:
    run(cli, "clinic", "add", "--name", "Riverside", "--help-contact", "(212) 555-0100")
    run(cli, "clinic", "add", "--name", "Hillside", "--help-contact", "(212) 555-0101")
    refused = cli.invoke(app, ["clinic", "key", "revoke", "1", "--clinic", "2"])
    assert refused.exit_code == 3 and "API key 1 not found" in refused.output
