"""What a patient's text message asks for: stop, start, help, or something for the clinic.

Carriers and Twilio match opt-out keywords on the whole message, ignoring case, surrounding
spaces and punctuation ("Stop." and " stop " are STOP; "please stop texting" is not). A
message that is not a keyword is kept for the clinic's staff to read.
"""

from __future__ import annotations

import enum
import re
import unicodedata


class Keyword(enum.StrEnum):
    stop = "stop"
    start = "start"
    help = "help"
    other = "other"


STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# Twilio's Advanced Opt-Out names the keyword it matched in the OptOutType parameter.
_OPT_OUT_TYPES = {"STOP": Keyword.stop, "START": Keyword.start, "HELP": Keyword.help}
_INNER_SEPARATORS = re.compile(r"[\s\-_]+")


def normalize(text: str) -> str:
    """Upper case, compatibility-folded, without surrounding punctuation or doubled spaces."""
    folded = unicodedata.normalize("NFKC", text).upper()
    start, end = 0, len(folded)
    while start < end and not folded[start].isalnum():
        start += 1
    while end > start and not folded[end - 1].isalnum():
        end -= 1
    # "opt-out", "opt_out" and "opt  out" are all the two-word keyword.
    return _INNER_SEPARATORS.sub(" ", folded[start:end])


def classify(text: str | None, *, opt_out_type: str | None = None) -> Keyword:
    """The keyword family of a whole message; Twilio's own classification wins when given."""
    if opt_out_type and opt_out_type.strip().upper() in _OPT_OUT_TYPES:
        return _OPT_OUT_TYPES[opt_out_type.strip().upper()]
    word = normalize(text or "")
    if word in STOP_WORDS:
        return Keyword.stop
    if word in START_WORDS:
        return Keyword.start
    if word in HELP_WORDS:
        return Keyword.help
    return Keyword.other
