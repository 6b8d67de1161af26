"""What a person is told when their request is done, refused or extended, in English and
Dutch.

The texts say what Art. 12 asks of a reply: what was done and when, and where
to go if they disagree (a supervisory authority, Art. 77; for a refusal also a
court, Art. 79, as Art. 12(4) requires). They name the authorities of the
Netherlands and Belgium because the product serves Dutch and Flemish teams.
They carry no personal data: the reference and the date, nothing about the
person. Dates are written out with their month names here rather than through
``locale``, which is process-wide and not safe to switch in a worker thread.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

WIDTH = 72
NBSP = "\u00a0"

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
}

# (language, kind) -> subject, then the body's paragraphs; "{when}", "{reference}",
# "{organisation}" and "{reason}" are filled in by ``compose``.
TEXTS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("en", "erasure"): (
        "Your erasure request {reference} has been carried out",
        ("Dear Sir or Madam,",
         "{organisation} has carried out your request to erase your personal data "
         "(reference {reference}). The erasure was completed on {when}.",
         "We erased your personal data from every system, and at every processor (a "
         "company that handles personal data on our behalf), that privasync, our data "
         "synchronisation service, is connected to. Our backups hold nothing readable "
         "about you: what we kept of you was encrypted with a key of your own, and that "
         "key has been destroyed.",
         "If you disagree with how we handled your request, you have the right to lodge "
         "a complaint with a supervisory authority (Article 77 GDPR), such as the Dutch "
         "Autoriteit Persoonsgegevens or the Belgian Data Protection Authority.",
         "Kind regards,\n{organisation}"),
    ),
    ("en", "rejection"): (
        "Your request {reference}: we have not carried it out",
        ("Dear Sir or Madam,",
         "{organisation} has decided not to carry out your request (reference "
         "{reference}). This decision was taken on {when}.",
         "The reason:\n{reason}",
         "If you disagree with this decision, you have the right to lodge a complaint "
         "with a supervisory authority (Article 77 GDPR), such as the Dutch Autoriteit "
         "Persoonsgegevens or the Belgian Data Protection Authority, and to go to court "
         "(Article 79 GDPR).",
         "Kind regards,\n{organisation}"),
    ),
    ("en", "extension"): (
        "Your request {reference}: we need more time",
        ("Dear Sir or Madam,",
         "{organisation} has received your request (reference {reference}) and is "
         "working on it. We need more time to answer it than the one month the law "
         "sets, and will answer it by {when} at the latest (Article 12(3) GDPR allows "
         "one extension of up to two months).",
         "The reason:\n{reason}",
         "If you disagree, you have the right to lodge a complaint with a supervisory "
         "authority (Article 77 GDPR), such as the Dutch Autoriteit Persoonsgegevens or "
         "the Belgian Data Protection Authority.",
         "Kind regards,\n{organisation}"),
    ),
    ("nl", "extension"): (
        "Uw verzoek {reference}: wij hebben meer tijd nodig",
        ("Geachte heer, mevrouw,",
         "{organisation} heeft uw verzoek (kenmerk {reference}) ontvangen en werkt eraan. "
         "Wij hebben meer tijd nodig dan de ene maand die de wet stelt, en beantwoorden "
         "het uiterlijk op {when} (artikel 12, lid 3, AVG staat één verlenging van ten "
         "hoogste twee maanden toe).",
         "De reden:\n{reason}",
         "Bent u het hier niet mee eens, dan hebt u het recht een klacht in te dienen bij "
         "een toezichthoudende autoriteit (artikel 77 AVG), zoals de Autoriteit "
         "Persoonsgegevens in Nederland of de Gegevensbeschermingsautoriteit in België.",
         "Met vriendelijke groet,\n{organisation}"),
    ),
    ("nl", "erasure"): (
        "Uw verzoek {reference} om gegevens te wissen is uitgevoerd",
        ("Geachte heer, mevrouw,",
         "{organisation} heeft uw verzoek om uw persoonsgegevens te wissen uitgevoerd "
         "(kenmerk {reference}). Het wissen was voltooid op {when}.",
         "Wij hebben uw persoonsgegevens gewist uit elk systeem, en bij elke verwerker "
         "(een bedrijf dat persoonsgegevens in onze opdracht verwerkt), waarmee "
         "privasync, onze dienst voor gegevenssynchronisatie, verbonden is. Onze back-ups "
         "bevatten niets leesbaars meer over u: wat wij van u bewaarden, was versleuteld "
         "met een sleutel die alleen voor uw gegevens diende, en die sleutel is vernietigd.",
         "Bent u het niet eens met de manier waarop wij uw verzoek hebben behandeld, dan "
         "hebt u het recht een klacht in te dienen bij een toezichthoudende autoriteit "
         "(artikel 77 AVG), zoals de Autoriteit Persoonsgegevens in Nederland of de "
         "Gegevensbeschermingsautoriteit in België.",
         "Met vriendelijke groet,\n{organisation}"),
    ),
    ("nl", "rejection"): (
        "Uw verzoek {reference}: wij hebben het niet uitgevoerd",
        ("Geachte heer, mevrouw,",
         "{organisation} heeft besloten uw verzoek (kenmerk {reference}) niet uit te "
         "voeren. Dit besluit is genomen op {when}.",
         "De reden:\n{reason}",
         "Bent u het niet eens met dit besluit, dan hebt u het recht een klacht in te "
         "dienen bij een toezichthoudende autoriteit (artikel 77 AVG), zoals de Autoriteit "
         "Persoonsgegevens in Nederland of de Gegevensbeschermingsautoriteit in België, "
         "en om naar de rechter te stappen (artikel 79 AVG).",
         "Met vriendelijke groet,\n{organisation}"),
    ),
}


def _zone(offset: timedelta | None) -> str:
    """``UTC`` or ``UTC+01:00``: the offset in force, unambiguous in any language."""
    if not offset:
        return "UTC"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def when_text(when: datetime, language: str) -> str:
    """``1 March 2026, 13:00 (UTC+01:00)`` in the notice's language, in ``when``'s own zone.

    No-break spaces keep the date on one line when the paragraph is wrapped.
    """
    month = MONTHS[language][when.month - 1]
    text = f"{when.day} {month} {when.year}, {when:%H:%M} ({_zone(when.utcoffset())})"
    return text.replace(" ", NBSP)


def _wrap(paragraph: str) -> str:
    """Wrap each line of a paragraph on its own, so an admin's line breaks survive."""
    return "\n".join(textwrap.fill(line, WIDTH, break_long_words=False,
                                   break_on_hyphens=False) or line
                     for line in paragraph.splitlines())


def compose(language: str, kind: str, fields: dict[str, str]) -> tuple[str, str]:
    """The subject and the wrapped plain-text body for one language and kind."""
    subject, paragraphs = TEXTS[(language, kind)]
    body = "\n\n".join(_wrap(p.format(**fields)) for p in paragraphs)
    return subject.format(**fields), body + "\n"
