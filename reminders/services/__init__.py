"""The service layer: every change a clinic, a patient or the worker makes, in one place.

The CLI, the API and the web pages call these keyword-only functions inside one transaction
each; a function either applies its whole change or raises before writing anything.
"""

from reminders.services.clinics import create_clinic, get_clinic
from reminders.services.common import LIVE_STATUSES, Conflict, Context, NotFound
from reminders.services.consent import (
    consent_history,
    opt_in,
    opt_out,
    patient_by_public_id,
    record_consent,
    unsubscribe_email,
)
from reminders.services.courses import (
    EVENT_TYPES,
    change_course,
    end_course,
    get_course,
    live_courses,
    pause_course,
    plan_all,
    record_event,
    replan,
    resume_course,
    stop_course,
)
from reminders.services.erasure import ERASED, due_for_erasure, erase_patient
from reminders.services.keys import (
    create_api_key,
    hash_api_key,
    key_in_use,
    list_api_keys,
    new_api_key,
    revoke_api_key,
    rotate_api_key,
)
from reminders.services.patients import (
    PATIENT_FIELDS,
    check_enrollment,
    current_course,
    enroll,
    get_patient,
    list_patients,
    patient_messages,
    update_patient,
)
from reminders.services.provider import InboundOutcome, receive_text, record_delivery

__all__ = [
    "ERASED",
    "EVENT_TYPES",
    "LIVE_STATUSES",
    "PATIENT_FIELDS",
    "Conflict",
    "Context",
    "InboundOutcome",
    "NotFound",
    "change_course",
    "check_enrollment",
    "create_api_key",
    "consent_history",
    "create_clinic",
    "due_for_erasure",
    "erase_patient",
    "current_course",
    "end_course",
    "enroll",
    "get_clinic",
    "get_course",
    "get_patient",
    "hash_api_key",
    "key_in_use",
    "list_api_keys",
    "list_patients",
    "live_courses",
    "new_api_key",
    "opt_in",
    "opt_out",
    "patient_by_public_id",
    "patient_messages",
    "pause_course",
    "plan_all",
    "receive_text",
    "record_consent",
    "record_delivery",
    "record_event",
    "replan",
    "revoke_api_key",
    "resume_course",
    "rotate_api_key",
    "stop_course",
    "unsubscribe_email",
    "update_patient",
]
