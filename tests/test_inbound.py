"""What a patient's text asks for: opt-out in any reasonable words, START, HELP, or staff."""

from __future__ import annotations

import pytest

from reminders.inbound import Keyword, classify

STOP, START, HELP, OTHER = Keyword.stop, Keyword.start, Keyword.help, Keyword.other

OPT_OUT_KEYWORDS = [
    ("STOP", STOP),
    ("STOPALL", STOP),
    ("STOP ALL", STOP),
    ("Unsubscribe", STOP),
    ("cancel", STOP),
    ("end", STOP),
    ("quit", STOP),
    ("revoke", STOP),
    ("optout", STOP),
    ("Opt out", STOP),
    ("opt-out", STOP),
    ("ALTO", STOP),
    ("parar", STOP),
    ("Detener", STOP),
    ("CANCELAR", STOP),
    ("baja", STOP),
    ("NO MÁS", STOP),
]

SPELLINGS = [
    ("Stop.", STOP),
    ("  stop  ", STOP),
    ("stop!!!", STOP),
    ("sToP", STOP),
    ("¡Alto!", STOP),
    ("no mas", STOP),
    ("ＳＴＯＰ", STOP),
    ("ｓｔｏｐ！", STOP),
    ("STOP 🛑", STOP),
    ("🙏 stop please 🙏", STOP),
    ("S-T-O-P", OTHER),  # spelled out letter by letter, it is not the word
    ("STOP\n-- Sent from my phone", STOP),
    ("Alto\n\nEnviado desde mi iPhone", STOP),
    ("stop\n— Sent from my Galaxy", STOP),
    ("Don´t text me", STOP),
    ("Don’t text me", STOP),
]

SHORT_STOP_PHRASES = [
    ("please stop", STOP),
    ("Stop please, thank you", STOP),
    ("stop it", STOP),
    ("Just stop this now!", STOP),
    ("Can you stop?", STOP),
    ("I want to unsubscribe", STOP),
    ("I want to opt out", STOP),
    ("stop stop stop", STOP),
    ("No more!", STOP),
    ("no texts please", STOP),
    ("leave me alone", STOP),
    ("Wrong number", STOP),
    ("alto por favor", STOP),
    ("Por favor, cancelar", STOP),
    ("Sí, alto", STOP),
    ("Basta ya", STOP),
    ("quiero cancelar", STOP),
    ("Para esto porfa", STOP),
    ("Número equivocado", STOP),
    ("Thanks. Stop.", STOP),
    ("Yes, stop", STOP),
    ("Why am I still getting texts? I said STOP", STOP),
]

STOP_THE_MESSAGES = [
    ("please stop texting me", STOP),  # was "other" when only whole keywords counted
    ("stop texting me", STOP),
    ("no more texts", STOP),
    ("No more messages, thanks", STOP),
    ("unsubscribe me", STOP),
    ("how do I unsubscribe?", STOP),
    ("don't text me", STOP),
    ("Do not contact me again", STOP),
    ("remove me from this list", STOP),
    ("Take me off your list please", STOP),
    ("Please delete my number", STOP),
    ("can you please stop sending me these texts", STOP),
    ("Hi, this is Maria. I finished my treatment and I would like you to stop sending", STOP),
    ("cancel my appointment reminders", STOP),
    ("I don't want any more reminders", STOP),
    ("I don't want to get texts anymore", STOP),
    ("I do not wish to receive texts", STOP),
    ("Why don't you stop texting me", STOP),
    ("I want these texts to stop", STOP),
    ("How do I stop getting these messages?", STOP),
    ("I revoke my consent", STOP),
    ("Opt me out of the sunscreen texts", STOP),
    ("no más mensajes", STOP),
    ("ya no me manden", STOP),
    ("por favor ya no me manden mensajes", STOP),
    ("dejen de escribirme", STOP),
    ("Dejen de mandarme mensajes, gracias", STOP),
    ("no quiero más mensajes", STOP),
    ("Ya no quiero recibir mensajes", STOP),
    ("Quiero darme de baja", STOP),
    ("Sáquenme de la lista", STOP),
    ("Paren los recordatorios por favor", STOP),
    ("No me escriban más", STOP),
]

MESSAGES_FOR_STAFF = [
    ("can I stop the sunscreen in winter?", OTHER),
    ("I stopped my pills because of a rash", OTHER),
    ("stopped my pills", OTHER),
    ("when do I stop the moisturizer", OTHER),
    ("Should I stop taking it if my lips crack?", OTHER),
    ("Can I stop?", OTHER),
    ("Will the texts stop when my course ends?", OTHER),
    ("When do I stop the moisturizer? The text said 3 months", OTHER),
    ("please don't stop the reminders", OTHER),
    ("I don't want the texts to stop", OTHER),
    ("No quiero que dejen de mandar los recordatorios", OTHER),
    ("I don't want to text you back", OTHER),
    ("Stop sending the refill to my old pharmacy", OTHER),
    ("I don't understand the message", OTHER),
    ("I don't get your texts on Sundays", OTHER),
    ("No messages today?", OTHER),
    ("Don't send my prescription to the old pharmacy", OTHER),
    ("Can I cancel my appointment?", OTHER),
    ("I want to end it", OTHER),
    ("the end of the month", OTHER),
    ("My lips hurt, is that normal?", OTHER),
    ("Thanks!", OTHER),
    ("no", OTHER),
    ("¿Puedo dejar de usar la crema en invierno?", OTHER),
    ("¿Cuándo paro la pastilla?", OTHER),
    ("Dejé de tomar las pastillas por un sarpullido", OTHER),
    ("No me llegan los mensajes", OTHER),
    ("No me manden la receta a la farmacia vieja", OTHER),
    ("No puedo más con la resequedad", OTHER),
    ("", OTHER),
    ("   ", OTHER),
    ("🙂", OTHER),
    ("👍🏽🙏", OTHER),
    ("-- Sent from my phone", OTHER),
]

START_AND_HELP = [
    ("start", START),
    ("START!", START),
    ("UNSTOP", START),
    ("Yes!", START),
    ("yes please", START),
    ("Sí", START),
    ("SI, gracias", START),
    ("comenzar", START),
    ("Ｓｔａｒｔ", START),
    ("start\nSent from my iPhone", START),
    ("Yes I took it this morning", OTHER),
    ("Sí, ya empecé la crema", OTHER),
    ("help", HELP),
    ("INFO?", HELP),
    ("Help!!!", HELP),
    ("ayuda por favor", HELP),
    ("AYUDA", HELP),
    ("Help, my lips are bleeding", OTHER),
    ("help me", OTHER),
    ("Necesito ayuda con la crema", OTHER),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    OPT_OUT_KEYWORDS
    + SPELLINGS
    + SHORT_STOP_PHRASES
    + STOP_THE_MESSAGES
    + MESSAGES_FOR_STAFF
    + START_AND_HELP,
)
def test_a_text_is_classified_by_what_it_asks_for(text: str, expected: Keyword) -> None:
    assert classify(text) == expected


@pytest.mark.parametrize(
    ("text", "opt_out_type", "expected"),
    [
        ("arret", "STOP", STOP),
        ("Can I stop the sunscreen?", "STOP", STOP),
        ("please stop texting me", "START", START),
        ("?", " help ", HELP),
        ("stop", "", STOP),
        ("stop", None, STOP),
        ("stop", "UNKNOWN", STOP),
    ],
)
def test_twilios_own_classification_wins_when_it_names_one(
    text: str, opt_out_type: str | None, expected: Keyword
) -> None:
    assert classify(text, opt_out_type=opt_out_type) == expected


def test_no_text_at_all_is_for_staff() -> None:
    assert classify(None) == OTHER
