"""What a patient's text message asks for: stop, start, help, or something for the clinic.

Since 2025-04-11 a patient may opt out "in any reasonable words" (47 CFR 64.1200(a)(10)), so
the classifier reads more than the carriers' keywords. The text is first folded: compatibility
forms (full-width letters), accents and case are removed, apostrophes dropped ("don't" is
"dont"), a signature line ("-- Sent from my phone", "Enviado desde mi iPhone") and all after it
cut off, and the rest split into clauses at sentence punctuation; other punctuation and emoji
are spaces. The text is an opt-out when any of these holds:

1. A clause is nothing but an opt-out word with politeness around it: "Stop.", "please stop",
   "STOP ALL", "can you stop it now, thanks", "I want to unsubscribe", "alto por favor",
   "no más", "no texts please". The clause holds nothing else, so no word count is needed.
   END counts only as the bare word: "I want to end it" must reach staff as a message.
2. It holds a word that only ever means leaving a list, anywhere: UNSUBSCRIBE, OPT OUT,
   "take me off", "darme de baja" ("how do I unsubscribe?" is an opt-out).
3. A stop verb in command form takes the messages as its object, at any length: the verb,
   up to four little words (articles, pronouns, "sending", "receiving"), at most one word
   describing the messages, then a messaging word: "can you please stop sending me these
   texts", "cancel my appointment reminders", "remove me from this list", "dejen de
   escribirme". A negation right before the verb undoes it ("please don't stop the
   reminders"). "I want these texts to stop" says the same the other way round.
4. A negation is followed, through the same little words only, by messaging: "don't text
   me", "no more messages", "I don't want any more reminders", "ya no me manden", "no quiero
   más mensajes".

Anything else that mentions stopping is for the clinic's staff: a stop verb with another
object ("can I stop the sunscreen in winter?", "¿puedo dejar de usar la crema?"), stopping
told rather than asked for ("I stopped my pills because of a rash"), the messages stopping
on their own ("will the texts stop when my course ends?"). Where a reading is in doubt the
rules lean to the opt-out, which the law and the patient's peace favour; the words are kept
for staff either way. Emails are not messaging words here: a text can only stop texts.

START and HELP are answered only when the whole text is the keyword with politeness
("Yes please", "Sí, gracias", "HELP!"): "Help, my lips are bleeding" is for staff.
Twilio's Advanced Opt-Out, when it matched a keyword itself (OptOutType), wins.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable


class Keyword(enum.StrEnum):
    stop = "stop"
    start = "start"
    help = "help"
    other = "other"


# Words and phrases are written folded: lower case, no accents, no apostrophes.

# A clause of one of these, with politeness around it, is an opt-out (rule 1).
STOP_KEYWORDS = (
    "stop", "stopall", "stop all", "unsubscribe", "cancel", "quit", "revoke", "optout",
    "opt out", "no more", "leave me alone", "wrong number",
    "alto", "parar", "para", "pare", "paren", "detener", "deten", "detente", "detengan",
    "cancelar", "cancela", "cancelen", "baja", "no mas", "basta", "numero equivocado",
)  # fmt: skip
# Common inside sentences ("the end of the month", "I want to end it"): only the bare word.
BARE_STOP_KEYWORDS = ("end",)
START_KEYWORDS = ("start", "unstop", "yes", "si", "comenzar")
HELP_KEYWORDS = ("help", "info", "ayuda")

# Words that say nothing on their own around a keyword.
FILLER = (
    "please", "pls", "plz", "thanks", "thank you", "thankyou", "thx", "ty", "ok", "okay",
    "hi", "hello", "hey", "just", "now", "right now", "immediately", "asap", "already",
    "again", "anymore", "any more", "sorry", "yes", "si",
    "por favor", "porfa", "porfavor", "xfa", "gracias", "muchas gracias", "hola", "ya",
    "ahora", "ahora mismo", "inmediatamente", "de una vez", "oye", "vale", "disculpe", "perdon",
)  # fmt: skip
# Asking for it, before a stop keyword: "can you stop", "I said stop", "quiero cancelar"
# (but not "can I stop", which asks leave to stop something else).
REQUESTS = (
    "can you", "could you", "would you", "will you", "can u", "you can", "i want to",
    "i wanna", "i would like to", "id like to", "i wish to", "i want you to", "i need you to",
    "i said", "i told you", "i told you to",
    "pueden", "puede", "podrian", "podria", "quiero", "quisiera", "queremos", "favor de",
    "me gustaria", "dije", "ya dije", "les dije",
)  # fmt: skip
# What a stop keyword may point at in a clause of its own: "stop it", "para esto".
POINTERS = ("it", "this", "that", "these", "them", "all", "everything", "esto", "eso", "todo")

# Words that only ever mean leaving a list, anywhere in the text (rule 2).
LEAVE_WORDS = (
    "unsubscribe", "unsub", "unsuscribe", "stopall", "optout", "opt out", "opt me out",
    "take me off", "take my number off",
    "desuscribir", "desuscribirme", "desuscribanme", "darme de baja", "dar de baja",
    "denme de baja", "dame de baja",
)  # fmt: skip

# Stop verbs as commands or infinitives (rule 3): "stopped" tells, it does not ask. Folding
# reads "dejé de" (I stopped) as "deje de" (stop!); the messages as object still decide.
STOP_VERBS = (
    "stop", "quit", "cancel", "cease", "halt", "revoke", "withdraw", "remove", "delete",
    "erase", "block",
    "parar", "paren", "pare", "para de", "detener", "detengan", "detenga", "deten",
    "cancelar", "cancela", "cancele", "cancelen", "suspender", "suspende", "suspenda",
    "suspendan", "basta de", "alto a", "deja de", "dejar de", "deje de", "dejen de",
    "quitar", "quiten", "quitenme", "quitame", "sacar", "saquen", "saquenme", "sacame",
    "borrar", "borren", "borrenme", "borrame", "eliminar", "eliminen", "eliminenme",
)  # fmt: skip
NEGATIONS = ("dont", "do not", "never", "no longer", "nunca")
# "no" is also a plain answer ("No, the message was fine"): it needs a little word after it.
BARE_NEGATIONS = ("no",)
# Words that say the messages themselves: what is sent, the sending, the list.
MESSAGING = (
    "text", "texts", "texting", "txt", "txts", "txting", "message", "messages", "messaging",
    "msg", "msgs", "sms", "reminder", "reminders", "notification", "notifications", "alert",
    "alerts", "contact", "contacting", "calls", "calling", "write", "writing", "bother",
    "bothering", "spam", "spamming", "consent", "list", "my number", "my phone number",
    "this number",
    "mensaje", "mensajes", "msj", "msjs", "texto", "textos", "recordatorio", "recordatorios",
    "notificacion", "notificaciones", "aviso", "avisos", "alerta", "alertas", "consentimiento",
    "lista", "mi numero", "escribir", "escribirme", "escriban", "escribanme", "escribas",
    "escriba", "contactar", "contactarme", "contacten", "molestar", "molestarme", "molesten",
    "textear", "textearme",
)  # fmt: skip
# Sending counts as messaging when nothing else is sent: "stop sending", "ya no me manden",
# but not "don't send my prescription to the old pharmacy".
SEND_VERBS = (
    "send", "sending", "mandar", "mandarme", "manden", "mandenme", "mandes", "mande",
    "mandando", "enviar", "enviarme", "envien", "envienme", "envies", "envie", "enviando",
)  # fmt: skip
# Little words between a stop verb or a negation and the messages.
LINKS = (
    "me", "us", "to me", "the", "these", "those", "this", "that", "all", "of", "my", "your",
    "ur", "any", "more", "such", "from", "off", "ever", "again", "getting", "receiving",
    "want", "wanna", "need", "wish", "to get", "to receive",
    "nos", "le", "les", "el", "la", "los", "las", "este", "esta", "estos", "estas", "ese",
    "esa", "esos", "esas", "su", "sus", "tu", "tus", "mi", "mis", "de", "todo", "todos",
    "todas", "mas", "tantos", "tantas", "ningun", "ninguno", "ninguna", "recibir", "quiero",
    "queremos", "deseo", "necesito", "ya",
)  # fmt: skip
# Words between a negation and what it undoes: "don't stop the", "no quiero que paren".
UNDOING_LINKS = (
    "want", "wish", "need", "to", "please", "me", "the", "these", "those", "your", "my",
    "nos", "lo", "los", "las", "estos", "estas", "sus", "quiero", "queremos", "que",
)  # fmt: skip
# Words that may close a clause after a send verb: "ya no me manden más".
SEND_TAILS = ("me", "us", "nos", "more", "mas", "anything", "nada")

# Twilio's Advanced Opt-Out names the keyword it matched in the OptOutType parameter.
_OPT_OUT_TYPES = {"STOP": Keyword.stop, "START": Keyword.start, "HELP": Keyword.help}

_SIGNATURE = re.compile(r"(?:--|__|—|–|sent from|sent via|get outlook|enviado desde|enviado con)")
_APOSTROPHES = re.compile(r"['’‘ʼ`´＇]")
_CLAUSE_BREAKS = re.compile(r"[.!?;:,()\[\]{}\"“”«»|/\n]+")
_NOT_WORDS = re.compile(r"[\W_]+")


def _any(words: Iterable[str]) -> str:
    """A regex alternation of folded words, longest first so phrases win over their words."""
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"


_FILLER = _any(FILLER)
_LINK = _any(LINKS + SEND_VERBS)
_SENDING = rf"{_any(SEND_VERBS)}(?: (?:{_any(SEND_TAILS)}|{_FILLER}))*$"
_MESSAGES = rf"(?:{_any(MESSAGING)}\b|{_SENDING})"

_BARE_STOP = re.compile(
    rf"^(?:(?:{_FILLER} )*(?:{_any(REQUESTS)} (?:{_FILLER} )*)?"
    rf"(?:{_any(STOP_KEYWORDS)}(?: {_any(STOP_KEYWORDS + POINTERS)})*"
    rf"|no (?:{_LINK} )*{_MESSAGES})"
    rf"|(?:{_FILLER} )*{_any(BARE_STOP_KEYWORDS)})"
    rf"(?: {_FILLER})*$"
)
_LEAVE = re.compile(rf"\b{_any(LEAVE_WORDS)}\b")
_STOP_THE_MESSAGES = re.compile(
    rf"\b{_any(STOP_VERBS)} (?:{_LINK} ){{0,4}}(?:\w+ )?{_MESSAGES}"
    rf"|\b{_MESSAGES} (?:(?:need|needs|have|has|got) )?to (?:stop|end|cease)\b"
)
_NEGATED_BEFORE = re.compile(
    rf"\b{_any(NEGATIONS + BARE_NEGATIONS + ('not',))}"
    rf"(?: {_any(UNDOING_LINKS)})* $"
)
_NEGATED_MESSAGES = re.compile(
    rf"(?:\b{_any(NEGATIONS)} (?:{_LINK} ){{0,4}}|\b{_any(BARE_NEGATIONS)} (?:{_LINK} ){{1,4}})"
    rf"{_MESSAGES}(?! to (?:stop|end|cease)\b)"  # "I don't want the texts to stop"
)


def _whole(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """A whole text of these keywords, with politeness around them."""
    word = _any(keywords)
    return re.compile(rf"^(?:{_FILLER} )*{word}(?: (?:{word}|{_FILLER}))*$")


_WHOLE_START = _whole(START_KEYWORDS)
_WHOLE_HELP = _whole(HELP_KEYWORDS)


def clauses(text: str) -> list[str]:
    """The text folded to lower-case ASCII-like words, split at sentence punctuation."""
    # Apostrophes go first: NFKD turns an acute accent used as one ("don´t") into a space.
    decomposed = unicodedata.normalize("NFKD", _APOSTROPHES.sub("", text))
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    kept: list[str] = []
    for line in folded.splitlines():
        # A signature follows what the patient wrote; a first line is never one.
        if kept and _SIGNATURE.match(line.strip()):
            break
        if line.strip():
            kept.append(line)
    parts = (_NOT_WORDS.sub(" ", part).strip() for part in _CLAUSE_BREAKS.split("\n".join(kept)))
    return [part for part in parts if part]


def _stops_the_messages(clause: str) -> bool:
    """A stop verb with the messages as its object, not negated just before it."""
    return any(
        not _NEGATED_BEFORE.search(clause, 0, match.start())
        for match in _STOP_THE_MESSAGES.finditer(clause)
    )


def is_opt_out(parts: list[str]) -> bool:
    """Whether the folded clauses of a text ask, in any reasonable words, to stop texting."""
    return any(
        _BARE_STOP.match(part)
        or _LEAVE.search(part)
        or _NEGATED_MESSAGES.search(part)
        or _stops_the_messages(part)
        for part in parts
    )


def classify(text: str | None, *, opt_out_type: str | None = None) -> Keyword:
    """The keyword family of a message; Twilio's own classification wins when given."""
    twilio = (opt_out_type or "").strip().upper()
    if twilio in _OPT_OUT_TYPES:
        return _OPT_OUT_TYPES[twilio]
    parts = clauses(text or "")
    if is_opt_out(parts):
        return Keyword.stop
    whole = " ".join(parts)
    if _WHOLE_START.match(whole):
        return Keyword.start
    if _WHOLE_HELP.match(whole):
        return Keyword.help
    return Keyword.other
