"""The course forms over HTTP: each goes through the services, and refused input writes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from reminders.clock import utcnow
from reminders.models import Course, CourseEvent, Patient
from tests.web.conftest import Site, csrf, signed_in_client

STAFF = "sam@riverside.example"


def test_recording_the_last_dose_plans_the_after_course_messages(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, course = data.patient(clinic)
    last_dose = utcnow().date().isoformat()
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, f"/clinic/patients/{patient.id}")
        response = client.post(
            f"/clinic/courses/{course.id}/end",
            data={"csrf_token": token, "last_dose_date": last_dose},
        )
        page = client.get(f"/clinic/patients/{patient.id}").text
    assert response.status_code == 303
    assert "Last dose recorded" in page
    assert "After the course" in page
    with Session(data.rt.engine) as session:
        assert session.get(Course, course.id).last_dose_date.isoformat() == last_dose  # type: ignore[union-attr]


def test_a_last_dose_before_the_start_is_refused_next_to_its_field(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, course = data.patient(clinic)
    before = (utcnow() - timedelta(days=30)).date().isoformat()
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, f"/clinic/patients/{patient.id}")
        response = client.post(
            f"/clinic/courses/{course.id}/end",
            data={"csrf_token": token, "last_dose_date": before},
        )
    assert response.status_code == 422
    assert 'id="f-last_dose_date-error"' in response.text
    assert "is before the course start date" in response.text
    assert f'value="{before}"' in response.text
    with Session(data.rt.engine) as session:
        assert session.get(Course, course.id).last_dose_date is None  # type: ignore[union-attr]


def test_a_change_with_one_bad_field_keeps_the_good_one_unsaved_too(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, course = data.patient(clinic)
    new_start = (utcnow() + timedelta(days=7)).date().isoformat()
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, f"/clinic/patients/{patient.id}")
        response = client.post(
            f"/clinic/courses/{course.id}/change",
            data={"csrf_token": token, "start_date": new_start, "weeks": "0"},
        )
    assert response.status_code == 422
    assert "0 is outside 1-104 weeks" in response.text
    with Session(data.rt.engine) as session:
        assert session.get(Course, course.id).start_date == course.start_date  # type: ignore[union-attr]


def test_resuming_an_active_course_is_refused_with_the_reason(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, course = data.patient(clinic)
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, f"/clinic/patients/{patient.id}")
        response = client.post(f"/clinic/courses/{course.id}/resume", data={"csrf_token": token})
    assert response.status_code == 409
    assert "Course is active, only a paused course resumes" in response.text


def test_a_pregnancy_test_is_recorded_for_an_ipledge_patient(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    patient, course = data.patient(clinic, ipledge="yes", timezone="America/New_York")
    day = (utcnow() - timedelta(days=1)).date().isoformat()
    with signed_in_client(data.rt, STAFF) as client:
        token = csrf(client, f"/clinic/patients/{patient.id}")
        response = client.post(
            f"/clinic/courses/{course.id}/pregnancy-test", data={"csrf_token": token, "date": day}
        )
    assert response.status_code == 303
    with Session(data.rt.engine) as session:
        [event] = session.exec(select(CourseEvent).where(CourseEvent.course_id == course.id)).all()
        assert event.date.isoformat() == day


def test_an_enrolment_with_a_taken_phone_is_refused_and_writes_nothing(data: Site) -> None:
    clinic = data.clinic("Riverside Dermatology", email=STAFF)
    data.patient(clinic, phone="+12125550101")
    form = {
        "first_name": "Bea",
        "phone": "(212) 555-0101",
        "channel": "sms",
        "timezone": "America/New_York",
        "start_date": utcnow().date().isoformat(),
    }
    with signed_in_client(data.rt, STAFF) as client:
        form["csrf_token"] = csrf(client, "/clinic/patients/new")
        response = client.post("/clinic/patients/new", data=form)
    assert response.status_code == 422
    assert "already enrolled in an active course at this clinic" in response.text
    assert 'value="Bea"' in response.text
    with Session(data.rt.engine) as session:
        assert len(session.exec(select(Patient)).all()) == 1


def test_an_unknown_clinic_page_answers_the_404_page(data: Site) -> None:
    data.clinic("Riverside Dermatology", email=STAFF)
    with signed_in_client(data.rt, STAFF) as client:
        response = client.get("/clinic/no-such-page")
    assert response.status_code == 404
    assert "There is no such page or patient in your clinic." in response.text
