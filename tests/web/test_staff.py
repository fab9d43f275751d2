"""Staff users: password hashing, creation rules, and `reminders staff add`."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

from reminders.cli import app
from reminders.clock import utcnow
from reminders.config import get_settings
from reminders.db import make_engine, session_scope
from reminders.models import StaffUser
from reminders.services import create_clinic
from reminders.staff import (
    authenticate,
    create_staff,
    hash_password,
    needs_rehash,
    verify_password,
)
from reminders.validation import InvalidInput

PASSWORD = "correct horse battery staple"


def test_a_password_hash_is_salted_argon2id_and_verifies_only_the_same_password() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, "$argon2id$damaged")
    assert not verify_password(PASSWORD, "scrypt$damaged")
    assert not needs_rehash(first)


def scrypt_hash(password: str) -> str:
    """A hash as the service stored them before argon2id: `scrypt$n$r$p$salt$hash`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return "scrypt$16384$8$1$" + "$".join(encoded)


def test_an_old_scrypt_hash_signs_in_and_is_replaced_by_an_argon2id_one(engine: Engine) -> None:
    clinic_id = _clinic(engine)
    with session_scope(engine) as session:
        user = create_staff(
            session,
            clinic_id=clinic_id,
            email="sam@riverside.example",
            password=PASSWORD,
            now=utcnow(),
        )
        user.password_hash = old = scrypt_hash(PASSWORD)
        session.add(user)
    assert verify_password(PASSWORD, old) and not verify_password("wrong " + PASSWORD, old)
    with session_scope(engine) as session:
        assert authenticate(session, email="sam@riverside.example", password="wrong") is None
    assert staff_in(engine)[0].password_hash == old  # a wrong password changes nothing
    with session_scope(engine) as session:
        assert authenticate(session, email="sam@riverside.example", password=PASSWORD)
    [user] = staff_in(engine)
    assert user.password_hash.startswith("$argon2id$") and verify_password(
        PASSWORD, user.password_hash
    )
    with session_scope(engine) as session:
        assert authenticate(session, email="sam@riverside.example", password=PASSWORD)
    assert staff_in(engine)[0].password_hash == user.password_hash  # once is enough


def _clinic(engine: Engine) -> int:
    with session_scope(engine) as session:
        clinic, _key = create_clinic(
            session, name="Riverside Dermatology", help_contact="(212) 555-0100", now=utcnow()
        )
        return clinic.id  # type: ignore[return-value]


def test_staff_sign_in_with_any_case_of_their_email(engine: Engine) -> None:
    clinic_id = _clinic(engine)
    with session_scope(engine) as session:
        create_staff(
            session,
            clinic_id=clinic_id,
            email="Sam@Riverside.example",
            password=PASSWORD,
            now=utcnow(),
        )
    with session_scope(engine) as session:
        user = authenticate(session, email=" sam@riverside.EXAMPLE", password=PASSWORD)
        assert user is not None and user.email == "sam@riverside.example"
        assert authenticate(session, email="sam@riverside.example", password="wrong") is None
        assert authenticate(session, email="kim@riverside.example", password=PASSWORD) is None


def test_a_short_password_a_bad_email_or_a_taken_email_is_refused(engine: Engine) -> None:
    clinic_id = _clinic(engine)
    with session_scope(engine) as session:
        create_staff(
            session,
            clinic_id=clinic_id,
            email="sam@riverside.example",
            password=PASSWORD,
            now=utcnow(),
        )
    with pytest.raises(InvalidInput) as refused, session_scope(engine) as session:
        create_staff(
            session, clinic_id=clinic_id, email="not an email", password="short", now=utcnow()
        )
    assert {error.field for error in refused.value.errors} == {"email", "password"}
    with (
        pytest.raises(InvalidInput, match="already has a staff account"),
        session_scope(engine) as session,
    ):
        create_staff(
            session,
            clinic_id=clinic_id,
            email="SAM@riverside.example",
            password=PASSWORD,
            now=utcnow(),
        )


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield engine
    root.handlers[:], root.level = handlers, level  # the command set up logging for its process
    engine.dispose()
    get_settings.cache_clear()


def staff_in(engine: Engine) -> list[StaffUser]:
    with Session(engine) as session:
        return list(session.exec(select(StaffUser)).all())


def test_staff_add_asks_for_the_password_twice_without_showing_it(cli_database: Engine) -> None:
    clinic_id = _clinic(cli_database)
    result = CliRunner().invoke(
        app,
        ["staff", "add", "--clinic", str(clinic_id), "--email", "sam@riverside.example"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "staff user 1 added to clinic" in result.output
    assert PASSWORD not in result.output
    [user] = staff_in(cli_database)
    assert verify_password(PASSWORD, user.password_hash)


def test_staff_add_refuses_a_short_password_and_an_unknown_clinic(cli_database: Engine) -> None:
    clinic_id = _clinic(cli_database)
    args = ["staff", "add", "--email", "sam@riverside.example", "--password"]
    short = CliRunner().invoke(app, [*args, "short", "--clinic", str(clinic_id)])
    unknown = CliRunner().invoke(app, [*args, PASSWORD, "--clinic", "99"])
    assert short.exit_code == 2 and "password: must be 12" in short.output
    assert unknown.exit_code == 3 and "clinic 99 not found" in unknown.output
    assert staff_in(cli_database) == []


def test_staff_disable_enable_reset_password_and_list(cli_database: Engine) -> None:
    clinic_id = _clinic(cli_database)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("staff", "add", "--clinic", str(clinic_id), "--email", "ada@riverside.example",
        "--role", "admin", "--password", PASSWORD)  # fmt: skip
    assert "disabled, 0 sessions ended" in run("staff", "disable", "1")
    assert staff_in(cli_database)[0].disabled_at is not None
    assert "enabled" in run("staff", "enable", "1")
    new = "a new and long passphrase"
    assert "has a new password" in run("staff", "reset-password", "1", stdin=f"{new}\n{new}\n")
    assert verify_password(new, staff_in(cli_database)[0].password_hash)
    listed = run("staff", "list", "--format", "json")
    assert '"role": "admin"' in listed and '"email": "ada@riverside.example"' in listed
    common = runner.invoke(app, ["staff", "reset-password", "1", "--password", "Qwerty123456"])
    assert common.exit_code == 2 and "most common passwords" in common.output
