"""The clinics' retention periods, applied by the worker's planner pass."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from reminders.audit import SYSTEM, record
from reminders.services import due_for_erasure, erase_patient

log = logging.getLogger(__name__)


def apply_retention(session: Session, *, now: datetime) -> int:
    """Erase every patient whose clinic's retention period has run out; how many."""
    erased = 0
    for patient in due_for_erasure(session, now=now):
        erase_patient(session, patient=patient, now=now)
        record(
            session,
            clinic_id=patient.clinic_id,
            actor=SYSTEM,
            action="patient.erase",
            now=now,
            patient_id=patient.id,
            detail="retention period ended",
        )
        erased += 1
    if erased:
        log.info("erased %d patients whose retention period ended", erased)
    return erased
