"""`reminders replies`: what patients wrote to a clinic, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.base import ClinicOption, Format, FormatOption, app, command_scope, emit
from reminders.timing import to_local, zone

# Every reply of a clinic fits in a terminal; the web inbox and the API page through more.
LIMIT = 500


@app.command()
def replies(
    clinic: ClinicOption,
    unread: Annotated[bool, typer.Option("--unread", help="Only those not handled yet.")] = False,
    fmt: FormatOption = Format.text,
) -> None:
    """Patients' texts to a clinic, newest first: messages for staff and keywords answered."""
    from reminders.services import get_clinic, list_replies

    with command_scope() as scope:
        found = get_clinic(scope.session, clinic)
        rows, total = list_replies(
            scope.session, clinic_id=found.id, state="unread" if unread else "all", limit=LIMIT
        )
        tz = zone(found.timezone)
        items = [
            {
                "id": reply.id,
                "patient_id": reply.patient_id,
                "course_id": reply.course_id,
                "received_at": reply.received_at.isoformat(),
                "body": reply.body,
                "kind": reply.kind,
                "state": reply.state,
                "handled_at": reply.handled_at.isoformat() if reply.handled_at else None,
                "handled_by": reply.handled_by,
            }
            for reply in rows
        ]
        local = [f"{to_local(reply.received_at, tz):%Y-%m-%d %H:%M %Z}" for reply in rows]

    def text() -> str:
        if not items:
            return "no unread replies" if unread else "no replies"
        lines = [
            f"#{item['id']}  {when}  {item['state']:7}  {item['kind']:7}  "
            f"patient {item['patient_id']}: {' '.join(str(item['body']).split())}"
            for item, when in zip(items, local, strict=True)
        ]
        if total > len(items):
            lines.append(f"... and {total - len(items)} older")
        return "\n".join(lines)

    emit(fmt, items, text)
