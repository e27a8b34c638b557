# ruff: noqa: RUF001
# (RUF001: the localized templates use typographic characters such as en dashes and quotes.)
"""Synthetic legitimate commercial mail, used to augment the training corpus.

Why this exists: the labelled corpus (2002 SpamAssassin mail, technical mailing lists and a
2022-2025 phishing honeypot) contains almost no *legitimate* commercial mail - order
confirmations, shipping notices, receipts, account and security notices, statements,
newsletters, promotions, reminders, invitations, SaaS notifications and support replies. Phishing
imitates exactly these genres, so a model trained on the corpus alone learns "looks like a
receipt" as a phishing signal and flags real receipts.

What separates a legitimate message of these genres from an imitation is mostly consistency,
and that is what the generator models: the From address is at the brand's own domain, links go
to that registered domain (``www.``, ``click.``, ``links.``, ``email.`` and similar subdomains
of it; receipts sometimes to a well-known payment processor), the Message-ID carries the
sender's domain, nobody is asked to "verify" credentials on some other site, and the tone is
ordinary. Everything else - brand names, people, wording, layout, languages, currencies - is
varied as much as practical so that a model cannot learn the generator itself as a tell.

The messages are entirely synthetic: fictitious brands built from syllables (plus a handful of
big real brands sending from and linking to their own real domains), fictitious people at
``example.com`` / ``example.net`` / ``example.org``, and template text written for this module.
The model card documents their use as synthetic augmentation of the ham class.

Output is deterministic for a given ``(count, seed)``: all randomness comes from one
``random.Random(seed)``.
"""

from __future__ import annotations

import colorsys
import html
import random
import re
import textwrap
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

GENRES: tuple[str, ...] = (
    "order_confirmation",
    "shipping_update",
    "receipt",
    "subscription_renewal",
    "password_reset",
    "signin_alert",
    "statement_ready",
    "newsletter",
    "promotion",
    "reminder",
    "event_invitation",
    "saas_update",
    "support_ticket",
)
"""The genres of legitimate commercial mail the generator produces."""

LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "nl", "it")
_LANGUAGE_WEIGHTS: tuple[int, ...] = (76, 6, 5, 5, 4, 4)

PROCESSOR_DOMAINS: tuple[str, ...] = ("stripe.com", "paddle.com", "squareup.com")
"""Payment processors whose receipt pages a receipt may link to (or be sent from)."""


@dataclass(frozen=True, slots=True)
class SyntheticMessage:
    """One generated message with what the generator knows about it."""

    genre: str
    language: str
    sender_domain: str
    """Registered domain of the From address (a processor's for some receipts)."""
    brand_domain: str
    """The brand's own registered domain; links go here (or to ``processor``)."""
    processor: str
    """Registered domain of the payment processor a receipt links to, or ""."""
    real_brand: bool
    raw: bytes


def synthetic_commercial_ham(count: int, seed: int = 0) -> list[bytes]:
    """`count` distinct synthetic legitimate commercial messages, deterministic for a seed."""
    return [message.raw for message in synthetic_commercial_messages(count, seed)]


def synthetic_commercial_ham_with_genres(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """As :func:`synthetic_commercial_ham`, each message paired with its genre (see GENRES)."""
    return [(message.genre, message.raw) for message in synthetic_commercial_messages(count, seed)]


def synthetic_commercial_messages(count: int, seed: int = 0) -> list[SyntheticMessage]:
    """As :func:`synthetic_commercial_ham`, with genre, language and domains of each message.

    Genres are dealt in shuffled rounds, so every genre appears once per ``len(GENRES)``
    messages; languages are drawn with English as the large majority."""
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    messages: list[SyntheticMessage] = []
    seen: set[bytes] = set()
    deck: list[str] = []
    while len(messages) < count:
        if not deck:
            deck = list(GENRES)
            rng.shuffle(deck)
        genre = deck.pop()
        message = _generate(rng, genre, len(messages))
        if message.raw in seen:  # practically impossible (random Message-IDs); keep the promise
            continue
        seen.add(message.raw)
        messages.append(message)
    return messages


# ----------------------------------------------------------------------------- small helpers

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UPPER_DIGITS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_HEX = "0123456789abcdef"


def _token(rng: random.Random, length: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choices(alphabet, k=length))


def _digits(rng: random.Random, length: int) -> str:
    return str(rng.randint(1, 9)) + _token(rng, length - 1, "0123456789")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "item"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


_WEEKDAYS: dict[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
}
_MONTHS: dict[str, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
}


def _format_date(day: date, lang: str, country: str, style: int) -> str:
    weekday = _WEEKDAYS[lang][day.weekday()]
    month = _MONTHS[lang][day.month - 1]
    d, m, y = day.day, day.month, day.year
    styles: tuple[str, ...]
    if lang == "en" and country == "us":
        styles = (
            f"{weekday}, {month} {d}",
            f"{month} {d}, {y}",
            f"{weekday[:3]}, {month[:3]} {d}",
            f"{m}/{d}/{y}",
        )
    elif lang == "en":
        styles = (
            f"{weekday} {d} {month}",
            f"{d} {month} {y}",
            f"{weekday[:3]} {d} {month[:3]}",
            f"{d:02d}/{m:02d}/{y}",
        )
    elif lang == "de":
        styles = (
            f"{weekday}, {d}. {month} {y}",
            f"{d}. {month}",
            f"{d:02d}.{m:02d}.{y}",
            f"{weekday}, {d:02d}.{m:02d}.",
        )
    elif lang == "fr":
        first = "1er" if d == 1 else str(d)
        styles = (
            f"{weekday} {first} {month} {y}",
            f"{first} {month}",
            f"{d:02d}/{m:02d}/{y}",
            f"{weekday} {first} {month}",
        )
    elif lang == "es":
        styles = (
            f"{weekday}, {d} de {month} de {y}",
            f"{d} de {month}",
            f"{d:02d}/{m:02d}/{y}",
            f"{weekday} {d} de {month}",
        )
    elif lang == "nl":
        styles = (
            f"{weekday} {d} {month} {y}",
            f"{d} {month}",
            f"{d:02d}-{m:02d}-{y}",
            f"{weekday} {d} {month}",
        )
    else:
        styles = (
            f"{weekday} {d} {month} {y}",
            f"{d} {month}",
            f"{d:02d}/{m:02d}/{y}",
            f"{weekday} {d} {month}",
        )
    return styles[style % len(styles)]


def _format_time(hour: int, minute: int, lang: str, country: str, style: int) -> str:
    if lang == "en" and country == "us":
        suffix = ("AM", "PM", "a.m.", "p.m.")[(hour >= 12) + 2 * (style % 2)]
        return f"{(hour % 12) or 12}:{minute:02d} {suffix}"
    if lang == "fr" and style % 2:
        return f"{hour} h {minute:02d}"
    if lang in ("nl", "it") and style % 2:
        return f"{hour}.{minute:02d}"
    return f"{hour:02d}:{minute:02d}" if lang == "en" or style % 3 else f"{hour}:{minute:02d}"


_CURRENCY_SYMBOLS: dict[str, str] = {
    "USD": "$",
    "GBP": "£",
    "EUR": "€",
    "CAD": "CA$",
    "AUD": "A$",
}


def _format_money(amount: float, currency: str, lang: str, style: int) -> str:
    cents = round(amount * 100)
    whole, frac = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    if lang == "en":
        number = f"{whole:,}.{frac:02d}"
        symbol = _CURRENCY_SYMBOLS[currency]
        if currency == "CAD" and style % 3 == 0:
            return f"{sign}${number} CAD"
        if currency == "USD" and style % 4 == 3:
            return f"{sign}${number} USD"
        return f"{sign}{symbol}{number}"
    grouped = f"{whole:,}".replace(",", "\u202f" if lang == "fr" else ".")
    number = f"{grouped},{frac:02d}"
    if lang == "nl":
        return f"{sign}€ {number}" if style % 3 else f"{sign}€{number}"
    if style % 5 == 4:
        return f"{sign}{number} EUR"
    return f"{sign}{number} €"


# ----------------------------------------------------------------------------- brands

_RETAIL_SECTORS: tuple[str, ...] = (
    "fashion",
    "electronics",
    "home",
    "books",
    "grocery",
    "outdoor",
    "beauty",
    "pets",
)
_LOCAL_RETAIL_SECTORS: tuple[str, ...] = ("fashion", "electronics", "home", "grocery")
_ACCOUNT_SECTORS: tuple[str, ...] = (
    *_RETAIL_SECTORS,
    "saas",
    "finance",
    "telecom",
    "streaming",
    "travel",
    "media",
)
_GENRE_SECTORS: dict[str, tuple[str, ...]] = {
    "order_confirmation": _RETAIL_SECTORS,
    "shipping_update": (*_RETAIL_SECTORS, "courier"),
    "receipt": (
        *_RETAIL_SECTORS,
        "saas",
        "saas",
        "streaming",
        "travel",
        "events",
        "media",
        "services",
    ),
    "subscription_renewal": ("saas", "saas", "streaming", "media", "telecom", "services"),
    "password_reset": _ACCOUNT_SECTORS,
    "signin_alert": _ACCOUNT_SECTORS,
    "statement_ready": ("finance", "finance", "telecom"),
    "newsletter": (*_RETAIL_SECTORS, "saas", "media", "media", "travel", "finance", "health"),
    "promotion": (*_RETAIL_SECTORS, *_RETAIL_SECTORS, "travel", "streaming", "telecom"),
    "reminder": ("health", "health", "services", "services", "travel", "travel"),
    "event_invitation": ("events", "saas", "saas", "fashion", "books", "media", "outdoor"),
    "saas_update": ("saas",),
    "support_ticket": (*_RETAIL_SECTORS, "saas", "saas", "telecom", "finance", "travel"),
}
_NAME_SUFFIXES: dict[str, tuple[str, ...]] = {
    "fashion": ("", "", "Studio", "Apparel", "Clothing", "& Co"),
    "electronics": ("", "Tech", "Electronics", "Audio", "Devices"),
    "home": ("", "Home", "Living", "Interiors", "House"),
    "books": ("Books", "Books", "Press", "Bookshop"),
    "grocery": ("", "Market", "Pantry", "Foods", "Roasters"),
    "outdoor": ("", "Outdoor", "Outfitters", "Gear", "Trail"),
    "beauty": ("", "Skin", "Beauty", "Botanics"),
    "pets": ("Pets", "Pet Supply", "Paws"),
    "saas": ("", "", "", "Cloud", "Labs", "HQ", "App"),
    "finance": ("Bank", "Pay", "Money", "Finance", "Card"),
    "telecom": ("Mobile", "Energy", "Broadband", "Telecom", "Fibre"),
    "streaming": ("TV", "Music", "Play", "Stream"),
    "travel": ("Air", "Travel", "Hotels", "Rail", "Trips"),
    "health": ("Dental", "Health", "Clinic", "Physio", "Eye Care"),
    "services": ("Salon", "Auto", "Fitness", "Spa"),
    "events": ("Events", "Live", "Tickets"),
    "media": ("Daily", "Weekly", "Journal", "Magazine", "Review"),
    "courier": ("Express", "Parcel", "Logistics", "Post"),
}
_JOINABLE_SUFFIXES = frozenset({"Pay", "Labs", "Cloud", "HQ", "App", "TV", "Air", "Play", "Gear"})
_SYLLABLES_START: tuple[str, ...] = (
    "lu",
    "mar",
    "kor",
    "vel",
    "sen",
    "tor",
    "bri",
    "ka",
    "no",
    "fen",
    "dal",
    "zu",
    "qui",
    "ra",
    "mo",
    "pel",
    "sto",
    "vin",
    "har",
    "el",
    "ori",
    "ta",
    "bel",
    "cor",
    "dru",
    "fi",
    "gal",
    "hol",
    "ja",
    "lin",
    "ne",
    "os",
    "pra",
    "sil",
    "tem",
    "ul",
    "wen",
    "yar",
    "ber",
    "cas",
)
_SYLLABLES_MIDDLE: tuple[str, ...] = (
    "ve",
    "ra",
    "li",
    "no",
    "ta",
    "mi",
    "do",
    "ri",
    "la",
    "be",
    "so",
    "",
    "",
    "",
    "",
)
_SYLLABLES_END: tuple[str, ...] = (
    "ra",
    "lo",
    "x",
    "ne",
    "ly",
    "va",
    "on",
    "ia",
    "ko",
    "sa",
    "ta",
    "in",
    "er",
    "is",
    "um",
    "eo",
    "ard",
    "ent",
    "ova",
    "ix",
    "elle",
    "wood",
    "field",
    "ton",
)
_COUNTRY_TLDS: dict[str, tuple[str, ...]] = {
    "us": ("com", "com", "com", "com", "io", "co", "shop", "net", "app"),
    "uk": ("co.uk", "co.uk", "co.uk", "com", "uk"),
    "ca": ("ca", "ca", "com"),
    "au": ("com.au", "com.au", "com"),
    "ie": ("ie", "ie", "com"),
    "de": ("de", "de", "de", "com", "shop"),
    "fr": ("fr", "fr", "com"),
    "es": ("es", "es", "com"),
    "nl": ("nl", "nl", "com"),
    "it": ("it", "it", "com"),
}
_COUNTRY_CURRENCY: dict[str, str] = {
    "us": "USD",
    "uk": "GBP",
    "ca": "CAD",
    "au": "AUD",
    "ie": "EUR",
    "de": "EUR",
    "fr": "EUR",
    "es": "EUR",
    "nl": "EUR",
    "it": "EUR",
}
_LEGAL_SUFFIXES: dict[str, tuple[str, ...]] = {
    "us": ("Inc.", "LLC", "Inc."),
    "uk": ("Ltd", "Limited"),
    "ca": ("Inc.", "Ltd."),
    "au": ("Pty Ltd",),
    "ie": ("Ltd", "DAC"),
    "de": ("GmbH", "GmbH & Co. KG", "AG"),
    "fr": ("SAS", "SARL"),
    "es": ("S.L.", "S.A."),
    "nl": ("B.V.",),
    "it": ("S.r.l.", "S.p.A."),
}
_LANGUAGE_COUNTRIES: dict[str, tuple[str, ...]] = {
    "en": ("us", "us", "us", "us", "uk", "uk", "uk", "ca", "au", "ie"),
    "de": ("de",),
    "fr": ("fr",),
    "es": ("es",),
    "nl": ("nl",),
    "it": ("it",),
}


def _address(rng: random.Random, country: str) -> str:
    n = rng.randint(2, 240)
    if country == "us":
        street = rng.choice(
            (
                "Maple",
                "Harbor",
                "Cedar",
                "Mission",
                "Lake",
                "Market",
                "Pine",
                "Franklin",
                "Grand",
                "Elm",
                "Willow",
                "Union",
            )
        )
        kind = rng.choice(("Street", "Avenue", "Blvd", "Road", "St.", "Ave."))
        city, state, zip_prefix = rng.choice(
            (
                ("Portland", "OR", "972"),
                ("Austin", "TX", "787"),
                ("Denver", "CO", "802"),
                ("Boston", "MA", "021"),
                ("Chicago", "IL", "606"),
                ("Seattle", "WA", "981"),
                ("Brooklyn", "NY", "112"),
                ("Raleigh", "NC", "276"),
                ("Minneapolis", "MN", "554"),
            )
        )
        unit = rng.choice(
            ("", "", f"Suite {rng.randint(100, 990)}, ", f"Floor {rng.randint(2, 9)}, ")
        )
        return f"{n} {street} {kind}, {unit}{city}, {state} {zip_prefix}{rng.randint(10, 99)}"
    if country in ("uk", "ie"):
        street = rng.choice(
            (
                "Mill",
                "Church",
                "Station",
                "Victoria",
                "Queen's",
                "Canal",
                "Bridge",
                "Kings",
                "Albion",
            )
        )
        kind = rng.choice(("Road", "Street", "Lane", "Yard", "Quay"))
        if country == "ie":
            eircode = f"D{rng.randint(1, 24):02d} {_token(rng, 4, _UPPER_DIGITS)}"
            return f"{n} {street} {kind}, Dublin {eircode}"
        city, area = rng.choice(
            (
                ("Manchester", "M"),
                ("Leeds", "LS"),
                ("Bristol", "BS"),
                ("London", "EC"),
                ("Edinburgh", "EH"),
                ("Brighton", "BN"),
                ("Glasgow", "G"),
                ("Cardiff", "CF"),
            )
        )
        inward = f"{rng.randint(1, 9)}{_token(rng, 2, 'ABDEFGHJLNPQRSTUWXYZ')}"
        postcode = f"{area}{rng.randint(1, 20)} {inward}"
        return f"{n} {street} {kind}, {city} {postcode}"
    if country == "ca":
        city, prov, letter = rng.choice(
            (
                ("Toronto", "ON", "M"),
                ("Vancouver", "BC", "V"),
                ("Montreal", "QC", "H"),
                ("Calgary", "AB", "T"),
            )
        )
        street = rng.choice(("King Street West", "Queen Street", "Main Street", "Granville Street"))
        code = "ABCEGHJ"
        postal = (
            f"{letter}{rng.randint(1, 9)}{_token(rng, 1, code)} "
            f"{rng.randint(1, 9)}{_token(rng, 1, code)}{rng.randint(1, 9)}"
        )
        return f"{n} {street}, {city}, {prov} {postal}"
    if country == "au":
        city, state, post = rng.choice(
            (
                ("Sydney", "NSW", 2000),
                ("Melbourne", "VIC", 3000),
                ("Brisbane", "QLD", 4000),
                ("Perth", "WA", 6000),
            )
        )
        street = rng.choice(("George Street", "Collins Street", "Ann Street", "Hay Street"))
        return (
            f"Level {rng.randint(1, 20)}, {n} {street}, {city} {state} {post + rng.randint(0, 9)}"
        )
    if country == "de":
        street = rng.choice(
            (
                "Lindenstraße",
                "Hafenweg",
                "Gartenstraße",
                "Am Markt",
                "Bahnhofstraße",
                "Mühlenweg",
                "Schillerplatz",
                "Uferstraße",
            )
        )
        city, plz = rng.choice(
            (
                ("Berlin", "10"),
                ("Hamburg", "20"),
                ("München", "80"),
                ("Köln", "50"),
                ("Leipzig", "04"),
                ("Frankfurt am Main", "60"),
            )
        )
        return f"{street} {rng.randint(1, 120)}, {plz}{rng.randint(100, 999)} {city}"
    if country == "fr":
        street = rng.choice(
            (
                "rue des Lilas",
                "avenue de la Gare",
                "rue du Moulin",
                "place du Marché",
                "rue des Tanneurs",
                "quai des Brumes",
            )
        )
        city, cp = rng.choice(
            (
                ("Paris", "750"),
                ("Lyon", "6900"),
                ("Nantes", "4400"),
                ("Lille", "5900"),
                ("Bordeaux", "3300"),
            )
        )
        postcode = f"{cp}{rng.randint(1, 20):02d}" if len(cp) == 3 else f"{cp}{rng.randint(0, 9)}"
        return f"{rng.randint(1, 120)} {street}, {postcode} {city}"
    if country == "es":
        street = rng.choice(
            (
                "Calle Mayor",
                "Avenida del Puerto",
                "Calle de los Olivos",
                "Paseo de la Estación",
                "Calle del Sol",
            )
        )
        city, cp = rng.choice(
            (
                ("Madrid", "280"),
                ("Barcelona", "080"),
                ("Valencia", "460"),
                ("Sevilla", "410"),
                ("Málaga", "290"),
            )
        )
        return f"{street}, {rng.randint(1, 120)}, {cp}{rng.randint(10, 99)} {city}"
    if country == "nl":
        street = rng.choice(("Havenstraat", "Kerkstraat", "Molenweg", "Stationsplein", "Lindelaan"))
        city, pc = rng.choice(
            (
                ("Amsterdam", "10"),
                ("Utrecht", "35"),
                ("Rotterdam", "30"),
                ("Eindhoven", "56"),
                ("Den Haag", "25"),
            )
        )
        letters = _token(rng, 2, "ABCDEGHJKLMNPRSTVWXZ")
        return f"{street} {rng.randint(1, 120)}, {pc}{rng.randint(10, 99)} {letters} {city}"
    street = rng.choice(
        ("Via Roma", "Via dei Mille", "Corso Garibaldi", "Via del Porto", "Piazza della Stazione")
    )
    city, cap = rng.choice(
        (
            ("Milano", "201"),
            ("Torino", "101"),
            ("Bologna", "401"),
            ("Firenze", "501"),
            ("Roma", "001"),
        )
    )
    return f"{street} {rng.randint(1, 120)}, {cap}{rng.randint(10, 99)} {city}"


@dataclass(frozen=True, slots=True)
class _Brand:
    name: str
    domain: str
    sector: str
    country: str
    currency: str
    legal: str
    address: str
    web: str
    track: str
    account: str
    help: str
    cdn: str
    handle: str
    real: bool = False


@dataclass(frozen=True, slots=True)
class _RealBrand:
    name: str
    domains: dict[str, tuple[str, ...]]
    genres: tuple[str, ...]
    sector: str
    web: str
    account: str
    help: str


_REAL_BRANDS: tuple[_RealBrand, ...] = (
    _RealBrand(
        "Amazon",
        {
            "en": ("amazon.com", "amazon.com", "amazon.co.uk", "amazon.ca", "amazon.com.au"),
            "de": ("amazon.de",),
            "fr": ("amazon.fr",),
            "es": ("amazon.es",),
            "nl": ("amazon.nl",),
            "it": ("amazon.it",),
        },
        (
            "order_confirmation",
            "shipping_update",
            "receipt",
            "promotion",
            "password_reset",
            "signin_alert",
            "subscription_renewal",
            "support_ticket",
        ),
        "retail",
        "www",
        "www",
        "www",
    ),
    _RealBrand(
        "Apple",
        {lang: ("apple.com",) for lang in LANGUAGES},
        (
            "receipt",
            "subscription_renewal",
            "signin_alert",
            "password_reset",
            "order_confirmation",
            "shipping_update",
        ),
        "electronics",
        "www",
        "account",
        "support",
    ),
    _RealBrand(
        "PayPal",
        {lang: ("paypal.com",) for lang in LANGUAGES},
        ("receipt", "statement_ready", "signin_alert", "password_reset"),
        "finance",
        "www",
        "www",
        "www",
    ),
    _RealBrand(
        "Microsoft",
        {lang: ("microsoft.com",) for lang in LANGUAGES},
        ("signin_alert", "subscription_renewal", "receipt", "saas_update", "password_reset"),
        "saas",
        "www",
        "account",
        "support",
    ),
    _RealBrand(
        "Google",
        {lang: ("google.com",) for lang in LANGUAGES},
        ("signin_alert", "saas_update", "receipt", "subscription_renewal"),
        "saas",
        "www",
        "myaccount",
        "support",
    ),
    _RealBrand(
        "DHL",
        {
            "en": ("dhl.com",),
            "de": ("dhl.de",),
            "fr": ("dhl.com",),
            "es": ("dhl.com",),
            "nl": ("dhl.com",),
            "it": ("dhl.com",),
        },
        ("shipping_update",),
        "courier",
        "www",
        "www",
        "www",
    ),
    _RealBrand(
        "Netflix",
        {lang: ("netflix.com",) for lang in LANGUAGES},
        ("subscription_renewal", "signin_alert", "password_reset", "newsletter"),
        "streaming",
        "www",
        "www",
        "help",
    ),
    _RealBrand(
        "GitHub",
        {"en": ("github.com",)},
        ("signin_alert", "password_reset", "saas_update", "receipt", "support_ticket"),
        "saas",
        "",
        "",
        "docs",
    ),
    _RealBrand(
        "LinkedIn",
        {lang: ("linkedin.com",) for lang in LANGUAGES},
        ("newsletter", "signin_alert", "event_invitation", "password_reset"),
        "media",
        "www",
        "www",
        "www",
    ),
    _RealBrand(
        "Booking.com",
        {lang: ("booking.com",) for lang in LANGUAGES},
        ("reminder", "receipt", "promotion", "newsletter"),
        "travel",
        "www",
        "secure",
        "www",
    ),
)
_REAL_COUNTRIES: dict[str, str] = {
    "amazon.co.uk": "uk",
    "amazon.ca": "ca",
    "amazon.com.au": "au",
    "amazon.de": "de",
    "amazon.fr": "fr",
    "amazon.es": "es",
    "amazon.nl": "nl",
    "amazon.it": "it",
    "dhl.de": "de",
}


def _host(prefix: str, domain: str) -> str:
    return f"{prefix}.{domain}" if prefix else domain


def _real_brand(rng: random.Random, genre: str, lang: str) -> _Brand | None:
    candidates = [
        r
        for r in _REAL_BRANDS
        if genre in r.genres
        and lang in r.domains
        and not (genre == "promotion" and r.sector == "travel" and lang != "en")
    ]
    if not candidates:
        return None
    real = rng.choice(candidates)
    domain = rng.choice(real.domains[lang])
    country = _REAL_COUNTRIES.get(domain, "")
    if not country:
        country = rng.choice(_LANGUAGE_COUNTRIES[lang]) if lang == "en" else lang
    sector = rng.choice(_LOCAL_RETAIL_SECTORS) if real.sector == "retail" else real.sector
    name = real.name
    if real.name == "Amazon" and rng.random() < 0.5:
        name = "Amazon." + domain.split(".", 1)[1]
    web = _host(real.web, domain)
    return _Brand(
        name=name,
        domain=domain,
        sector=sector,
        country=country,
        currency=_COUNTRY_CURRENCY[country],
        legal=real.name,
        address="",
        web=web,
        track=web,
        account=_host(real.account, domain),
        help=_host(real.help, domain),
        cdn=web,
        handle=real.name.lower().replace(".", ""),
        real=True,
    )


def _fictitious_brand(rng: random.Random, genre: str, lang: str) -> _Brand:
    sector = rng.choice(_GENRE_SECTORS[genre])
    if lang != "en" and (sector in _RETAIL_SECTORS or genre == "promotion"):
        sector = rng.choice(_LOCAL_RETAIL_SECTORS)  # shops whose products have local names
    country = rng.choice(_LANGUAGE_COUNTRIES[lang])
    stem = rng.choice(_SYLLABLES_START) + rng.choice(_SYLLABLES_MIDDLE) + rng.choice(_SYLLABLES_END)
    if rng.random() < 0.25:
        stem += rng.choice(_SYLLABLES_END)
    base = stem.capitalize()
    suffix = rng.choice(_NAME_SUFFIXES[sector])
    name = f"{base} {suffix}" if suffix else base
    if suffix in _JOINABLE_SUFFIXES and rng.random() < 0.3:
        name = base + suffix  # "Lumorapay"
    label = stem
    roll = rng.random()
    if suffix and roll < 0.35:
        joined = re.sub(r"[^a-z]", "", suffix.lower())
        label = f"{stem}-{joined}" if rng.random() < 0.4 else stem + joined
    elif roll < 0.45:
        label = rng.choice(("get", "try", "shop", "my", "hello", "use")) + stem
    elif roll < 0.5:
        label = stem + rng.choice(("hq", "app", "online", "store"))
    tld = rng.choice(_COUNTRY_TLDS[country])
    if sector == "saas" and rng.random() < 0.35:
        tld = rng.choice(("io", "com", "app", "dev", "ai"))
    domain = f"{label}.{tld}"
    legal = f"{base} {rng.choice(_LEGAL_SUFFIXES[country])}"
    web = rng.choice(("www", "www", "www", ""))
    return _Brand(
        name=name,
        domain=domain,
        sector=sector,
        country=country,
        currency=_COUNTRY_CURRENCY[country],
        legal=legal,
        address=_address(rng, country),
        web=_host(web, domain),
        track=_host(rng.choice(("click", "links", "email", "go", "t", "e", "click")), domain),
        account=_host(rng.choice(("account", "my", "app", "secure", "www", "id")), domain),
        help=_host(rng.choice(("help", "support", "www", "help")), domain),
        cdn=_host(rng.choice(("cdn", "images", "static", "assets", "img", "www")), domain),
        handle=label.replace("-", ""),
    )


# ----------------------------------------------------------------------------- phrasebooks
# One phrasebook per language: key -> variants. English has the most variants; every language
# defines every English key (a test checks this). Templates use str.format fields filled from
# the message context ({brand}, {first}, {order}, {total}, ...). "a|b" entries are pairs.

_EN: dict[str, tuple[str, ...]] = {
    "first": (
        "James",
        "Olivia",
        "Priya",
        "Mohammed",
        "Chen",
        "Sofia",
        "Liam",
        "Grace",
        "Daniel",
        "Aisha",
        "Tom",
        "Emily",
        "Noah",
        "Hannah",
        "Carlos",
        "Mei",
        "Jack",
        "Zoe",
        "Ryan",
        "Fatima",
        "Owen",
        "Chloe",
        "Ethan",
        "Nadia",
        "Lucas",
        "Isla",
        "Samuel",
        "Leah",
        "Arjun",
        "Megan",
        "Kofi",
        "Ruth",
        "Marcus",
        "Yuki",
        "Ben",
        "Ella",
    ),
    "last": (
        "Carter",
        "Nguyen",
        "Patel",
        "Thompson",
        "Okafor",
        "Walsh",
        "Bennett",
        "Kim",
        "Hughes",
        "Rossi",
        "Murphy",
        "Ali",
        "Foster",
        "Clarke",
        "Lopez",
        "Evans",
        "Brooks",
        "Singh",
        "Turner",
        "Campbell",
        "Reid",
        "Fischer",
        "Hayes",
        "Morgan",
        "Price",
        "Shaw",
        "Wright",
        "Doyle",
        "Mensah",
        "Cohen",
    ),
    "greet": (
        "Hi {first},",
        "Hello {first},",
        "Dear {first} {last},",
        "Hey {first},",
        "{first},",
        "Hi there,",
        "Hello,",
        "Hi {first}!",
        "Good morning {first},",
    ),
    "closing": (
        "Thanks,",
        "Best,",
        "Cheers,",
        "Kind regards,",
        "Warm regards,",
        "Thank you,",
        "",
        "See you soon,",
        "All the best,",
        "Regards,",
    ),
    "team": (
        "The {brand} team",
        "{brand} Customer Care",
        "{agent} at {brand}",
        "Your friends at {brand}",
        "{brand}",
        "{brand} Support",
        "Team {brand}",
    ),
    "dept": ("Customer Care", "Team", "Support", "Notifications", "Service"),
    "help": (
        "Questions? Just reply to this email.",
        "Need a hand? Reply here and a real person will get back to you.",
        "If something doesn't look right, reply to this message and we'll sort it out.",
        "We're happy to help with anything - just hit reply.",
    ),
    "help_noreply": (
        "Questions? Our help centre has answers to most of them.",
        "Need help? Our support team is around seven days a week.",
        "If you have any questions, visit the Help Center on our website.",
        "Something not right? Contact us through the help pages.",
        "This mailbox isn't monitored, but our support team is happy to help online.",
    ),
    "foot_tx": (
        "You're receiving this email because you have an account with {brand}.",
        "This is a service email about your {brand} account.",
        "This message was sent to {email}.",
        "We sent this email to {email} because it's linked to your {brand} account.",
        "Account notices like this one are sent even if you've opted out of marketing emails.",
        "You received this transactional email as a {brand} customer.",
    ),
    "foot_mk": (
        "You're receiving this because you signed up for {brand} emails.",
        "You subscribed to our newsletter with {email}.",
        "Sent to {email}. You can change how often you hear from us at any time.",
        "You're on this list because you opted in at {domain}.",
        "This email was sent to {email} because you asked to hear about news and offers.",
    ),
    "unsub": ("Unsubscribe", "Unsubscribe from these emails", "Opt out", "unsubscribe here"),
    "prefs": (
        "Manage preferences",
        "Email preferences",
        "Update your settings",
        "Choose what you receive",
    ),
    "privacy": ("Privacy policy", "Privacy", "Privacy notice"),
    "helpc": ("Help Center", "Help", "Support", "Contact us", "FAQ", "Help centre"),
    "account": ("My account", "Your account", "Account", "Sign in"),
    "view_online": (
        "View in browser",
        "View this email online",
        "Trouble reading this? View it in your browser",
        "Open in browser",
    ),
    "rights": ("All rights reserved.", "", ""),
    "nav": (
        "New in|/new",
        "Bestsellers|/bestsellers",
        "Sale|/sale",
        "Gift cards|/gift-cards",
        "Stores|/stores",
        "Journal|/journal",
    ),
    "on": ("on",),
    "window": ("{a} and {b}", "{a} - {b}"),
    "cities_signin": (
        "Manchester, United Kingdom",
        "Austin, Texas, United States",
        "Toronto, Ontario, Canada",
        "Dublin, Ireland",
        "Melbourne, Australia",
        "Leeds, England",
        "Columbus, Ohio, US",
        "Cardiff, Wales",
    ),
    "cities": (
        "Lisbon",
        "Edinburgh",
        "Chicago",
        "Vancouver",
        "Barcelona",
        "Copenhagen",
        "Kyoto",
        "Boston",
        "Amsterdam",
        "Dublin",
        "Vienna",
        "San Diego",
    ),
    "hotel": (
        "Hotel {x}",
        "The {x} House",
        "{x} Suites",
        "Casa {x}",
        "{x} Inn & Spa",
        "The {x} Hotel",
    ),
    "free": ("Free", "FREE", "Free"),
    "l.order_no": ("Order number", "Order #", "Order ID", "Order no."),
    "l.order_date": ("Order date", "Placed on", "Ordered on"),
    "l.item": ("Item", "Product", "Description"),
    "l.qty": ("Qty", "Quantity"),
    "l.price": ("Price", "Amount"),
    "l.subtotal": ("Subtotal", "Items"),
    "l.shipping": ("Shipping", "Delivery", "Postage & packing", "Standard shipping"),
    "l.tax": ("Tax", "Estimated tax", "Sales tax"),
    "l.vat": ("VAT (included)", "Includes VAT of"),
    "l.total": ("Total", "Order total", "Total paid", "Grand total"),
    "l.ship_to": ("Shipping to", "Delivery address", "Ship to", "Delivering to"),
    "l.eta": ("Estimated delivery", "Arriving", "Expected delivery", "Delivery estimate"),
    "l.payment": ("Payment method", "Paid with", "Payment"),
    "l.invoice": ("Invoice number", "Receipt #", "Invoice", "Receipt number"),
    "l.date_paid": ("Date paid", "Payment date", "Date"),
    "l.amount": ("Amount paid", "Amount", "Total charged"),
    "l.tracking": ("Tracking number", "Tracking ID", "Tracking no."),
    "l.carrier": ("Carrier", "Shipped with", "Delivery partner"),
    "l.device": ("Device", "Device and browser"),
    "l.location": ("Location", "Approximate location", "Near"),
    "l.when": ("When", "Date", "Date and time"),
    "l.time": ("Time", "Start time"),
    "l.where": ("Where", "Location", "Venue"),
    "l.plan": ("Plan", "Subscription", "Membership"),
    "l.renews": ("Renewal date", "Renews on", "Next billing date"),
    "l.account_end": ("Account ending in", "Account", "Card ending in"),
    "l.balance": ("Statement balance", "New balance", "Closing balance", "Amount due"),
    "l.min_pay": ("Minimum payment", "Minimum due"),
    "l.due": ("Payment due", "Due date", "Due by"),
    "l.period": ("Statement period", "Billing period", "Period"),
    "l.ref": ("Booking reference", "Confirmation number", "Reference", "Confirmation code"),
    "l.with": ("With", "Provider", "Your specialist"),
    "l.ticket": ("Request", "Ticket", "Case number", "Request ID"),
    "l.status": ("Status",),
    "l.workspace": ("Workspace", "Team", "Organization"),
    "l.online": ("Online", "Online - link after registration", "Live stream"),
    "l.service": ("Appointment", "Service", "Treatment"),
    "l.checkin": ("Check-in", "Arrival"),
    "l.checkout": ("Check-out", "Departure"),
    "l.flight": ("Flight", "Flight number"),
    "l.depart": ("Departs", "Departure", "Departure time"),
    "l.m_users": ("Active users", "Active members", "People active"),
    "l.m_projects": ("Projects", "Projects updated"),
    "l.m_storage": ("Storage used", "Storage"),
    "l.m_requests": ("API requests", "Requests"),
    "l.m_uptime": ("Uptime", "Availability"),
    # order confirmation
    "ord.subj": (
        "Your {brand} order {order} is confirmed",
        "Order confirmation - #{order}",
        "Thanks for your order, {first}!",
        "We've got your order ({order})",
        "{brand} order {order}: confirmed",
        "Your order from {brand}",
        "Order #{order} received",
        "Your {brand} order of {item}",
    ),
    "ord.head": (
        "Thanks for your order",
        "Order confirmed",
        "We're getting your order ready",
        "Your order is in",
        "Thank you for shopping with us",
    ),
    "ord.intro": (
        "Thanks for shopping with {brand}. We've received your order and will let you "
        "know as soon as it ships.",
        "Good news: order {order} went through. Here's a summary of what you bought.",
        "We're preparing your items now. You'll get another email with tracking details "
        "once the parcel leaves our warehouse.",
        "This email confirms the order you placed on {odate}. The details are below.",
        "Your payment was accepted and your order is being packed.",
        "Thanks, {first}! We've started on your order and it should be with you by {ddate}.",
    ),
    "ord.extra": (
        "You can change or cancel items until the order is dispatched.",
        "Returns are free within 30 days of delivery.",
        "If you ordered a gift, the packing slip won't show any prices.",
        "We'll email you again when your order is on its way.",
        "Orders placed before 2 pm usually leave the same day.",
        "Keep this email as your order record.",
    ),
    "ord.cta": (
        "View order",
        "View your order",
        "Manage order",
        "Order details",
        "Check order status",
    ),
    # shipping
    "shp.subj.shipped": (
        "Your order {order} has shipped",
        "On its way: {item}",
        "Your {brand} parcel is on the way",
        "Shipped! Order #{order}",
        "Good news - your order is on its way",
        "Your package is on the move",
    ),
    "shp.subj.out": (
        "Out for delivery: order {order}",
        "Your package arrives today",
        "Today's the day - your {brand} order is out for delivery",
        "Arriving today: {item}",
    ),
    "shp.subj.delivered": (
        "Delivered: your order {order}",
        "Your package has been delivered",
        "Your {brand} order has arrived",
        "Delivered: {item}",
    ),
    "shp.head.shipped": (
        "Your order is on its way",
        "Shipped",
        "Your parcel has left our warehouse",
        "It's on the way!",
    ),
    "shp.head.out": ("Arriving today", "Out for delivery", "Your parcel is nearly there"),
    "shp.head.delivered": ("Delivered", "Your parcel has arrived", "Enjoy your order"),
    "shp.intro.shipped": (
        "Your parcel is on its way with {carrier} and should arrive by {ddate}.",
        "Good news: your order left our warehouse today. You can follow it "
        "using the tracking number below.",
        "We've handed your package to {carrier}. Expected delivery is {ddate}.",
        "Everything in order {order} has been packed and shipped.",
        "Your {item} is on the way and should reach you by {ddate}.",
    ),
    "shp.intro.out": (
        "Your parcel is with the driver and is expected between {window}.",
        "Your delivery is scheduled for today, between {window}. No signature is needed.",
        "It's nearly there! {carrier} will deliver your parcel today.",
        "Your order is out for delivery and should arrive later today.",
    ),
    "shp.intro.delivered": (
        "Your parcel was delivered on {ddate} at {time} and left {spot}.",
        "Our records show your order was delivered today. We hope you enjoy it!",
        "{carrier} delivered your package {spot}.",
        "Your order {order} has been delivered.",
    ),
    "shp.spot": (
        "at the front door",
        "with a neighbour",
        "in your parcel locker",
        "at the reception desk",
        "in the mailroom",
        "on the porch",
    ),
    "shp.extra": (
        "Tracking updates can take a few hours to appear.",
        "You can choose a safe place or a pickup point from the tracking page.",
        "If you weren't home, the driver will leave a card with next steps.",
        "Something missing? Let us know within 14 days.",
        "Please keep the packaging until you're happy with your items.",
    ),
    "shp.cta": (
        "Track package",
        "Track your parcel",
        "See delivery details",
        "Follow your delivery",
        "Track order",
    ),
    # receipt
    "rcp.subj": (
        "Your receipt from {brand}",
        "Receipt for your payment of {total}",
        "{brand} receipt #{invoice}",
        "Payment received - thank you",
        "Your invoice {invoice} is paid",
        "Your {brand} receipt [#{invoice}]",
        "Receipt from {brand} ({ddate_paid})",
    ),
    "rcp.head": (
        "Payment received",
        "Receipt",
        "Thanks for your payment",
        "Paid {total}",
        "Your receipt",
    ),
    "rcp.intro": (
        "We've received your payment of {total}. A receipt is included below for your records.",
        "This is a receipt for your recent payment to {brand}. No further action is needed.",
        "Thanks! Your payment for {desc} was successful.",
        "Here's your receipt. Keep it for your records - you can also download a PDF copy.",
        "Your payment of {total} for {desc} has been processed.",
    ),
    "rcp.extra": (
        "Charges will appear on your statement as {descriptor}.",
        "Invoices and receipts for past payments are in your billing settings.",
        "If you have questions about this charge, our billing team can help.",
        "This receipt was issued on behalf of {legal}.",
    ),
    "rcp.cta": (
        "Download receipt",
        "View invoice",
        "Download PDF",
        "View receipt",
        "See payment details",
    ),
    "rcp.desc": (
        "order {order}",
        "your {plan} subscription",
        "invoice {invoice}",
        "your {plan} plan",
    ),
    "rcp.proc": (
        "This payment was processed by {processor} on behalf of {brand}.",
        "{processor} handles payments for {brand}; this receipt is also available on their site.",
        "Payments to {brand} are processed by {processor}.",
    ),
    # subscription renewal
    "sub.subj.up": (
        "Your {plan} subscription renews on {rdate}",
        "Upcoming renewal: {brand} {plan}",
        "Heads up: your {brand} plan renews soon",
        "Reminder: your subscription renews on {rdate}",
        "Your {brand} membership renews in {days} days",
    ),
    "sub.subj.done": (
        "Your {brand} membership has been renewed",
        "Thanks for staying with {brand}",
        "Subscription renewed: {plan}",
        "Your {plan} plan is renewed",
    ),
    "sub.head.up": ("Your plan renews soon", "Renewal reminder", "Coming up: your renewal"),
    "sub.head.done": ("Subscription renewed", "You're all set", "Thanks for being a member"),
    "sub.intro.up": (
        "Your {plan} plan will renew automatically on {rdate}, and we'll charge "
        "{amount} to {method}.",
        "Just a quick reminder that your subscription renews on {rdate}. You don't "
        "need to do anything to keep access.",
        "Your annual {plan} plan renews in {days} days. The renewal price is {amount}.",
        "On {rdate} your {brand} {plan} subscription will renew for {amount}.",
    ),
    "sub.intro.done": (
        "Thanks for being a member! Your {plan} subscription has been renewed until {rdate}.",
        "We've renewed your {plan} plan and charged {amount} to {method}.",
        "Your subscription is good for another {period}. A receipt is available in your account.",
        "Your {plan} membership has renewed. Nothing else is needed from you.",
    ),
    "sub.extra": (
        "You can change plans or turn off auto-renew at any time in your account settings.",
        "Prices include applicable taxes.",
        "Switching to yearly billing works out cheaper over twelve months.",
        "If you cancel before the renewal date, you won't be charged again.",
        "Your saved payment details will be used; update them any time in Billing.",
    ),
    "sub.cta": (
        "Manage subscription",
        "Review your plan",
        "Billing settings",
        "View account",
        "Manage membership",
    ),
    # password reset
    "pwd.subj": (
        "Reset your {brand} password",
        "Your password reset request",
        "Password reset instructions",
        "{brand}: reset your password",
        "Here's the link to reset your password",
        "Password reset for {email}",
    ),
    "pwd.head": (
        "Reset your password",
        "Password reset",
        "Let's get you back in",
        "Choose a new password",
    ),
    "pwd.intro": (
        "We received a request to reset the password for the {brand} account "
        "associated with {email}.",
        "Someone (hopefully you) asked to reset your password. Use the button below to "
        "choose a new one.",
        "You asked for a password reset a moment ago. Follow the link below to set a new password.",
        "Forgot your password? It happens. You can pick a new one using this link.",
    ),
    "pwd.expiry": (
        "The link works for {minutes} minutes and can only be used once.",
        "For security, this link expires in {minutes} minutes.",
        "This link will stop working after {minutes} minutes.",
    ),
    "pwd.ignore": (
        "If you didn't request this, you can safely ignore this email; your password "
        "stays the same.",
        "Didn't ask for a reset? No action is needed - nothing changes unless you use the link.",
        "If it wasn't you, just delete this message. Your account is unchanged.",
    ),
    "pwd.cta": ("Reset password", "Choose a new password", "Set new password", "Reset my password"),
    "pwd.code": (
        "Enter this code in the {brand} app to reset your password:",
        "Your password reset code is:",
        "Use the following code to finish resetting your password:",
    ),
    # sign-in alert
    "sgn.subj": (
        "New sign-in to your {brand} account",
        "New login from {os}",
        "Security alert: new sign-in on {device}",
        "We noticed a new sign-in",
        "{brand}: sign-in from a new device",
        "A new device signed in to {brand}",
    ),
    "sgn.head": ("New sign-in", "New device signed in", "Security notice"),
    "sgn.intro": (
        "We noticed a new sign-in to your {brand} account on {device}.",
        "Your {brand} account ({email}) was just used to sign in on a device we "
        "haven't seen before.",
        "Someone signed in to your account from {location} a few minutes ago. Details are below.",
        "A new device was added to your {brand} account.",
    ),
    "sgn.ok": (
        "If this was you, you don't need to do anything.",
        "If you recognise this activity, you can ignore this email.",
        "Was it you? Then all is well - no action required.",
        "If you just signed in, there's nothing else to do.",
    ),
    "sgn.notme": (
        "If you don't recognise it, change your password in your account settings and "
        "sign out of other sessions.",
        "If this wasn't you, go to the security page in your account to review recent activity.",
        "Not you? Secure your account by updating your password from the {brand} app or website.",
        "Don't recognise this? Open your account's security settings on {domain}.",
    ),
    "sgn.cta": (
        "Review activity",
        "Check activity",
        "Security settings",
        "See devices",
        "Review recent activity",
    ),
    # statement
    "stm.subj": (
        "Your {month} statement is ready",
        "Your {brand} statement for {month} is available",
        "New statement available",
        "Your {month} bill is ready",
        "{brand}: your statement is ready to view",
    ),
    "stm.head": ("Your statement is ready", "New statement", "Your {month} bill"),
    "stm.intro": (
        "Your statement for the period ending {sdate} is now available in online banking.",
        "Your monthly statement is ready. Sign in to see the full details.",
        "Your {month} bill is now available. Here's a quick summary.",
        "Your latest statement is ready to view in the {brand} app and on our website.",
    ),
    "stm.extra": (
        "For your security, we don't attach statements to emails; you'll find them in "
        "your account.",
        "You can switch between paper and paperless statements in your settings.",
        "If you're enrolled in automatic payments, the amount due will be collected on "
        "the due date.",
        "Statements are kept in your account for seven years.",
    ),
    "stm.cta": ("View statement", "Go to documents", "See your bill", "Open statements"),
    # newsletter
    "nws.subj": (
        "{brand} Weekly: {title}",
        "This week at {brand}: {title}",
        "The {month} newsletter: {title}",
        "Your {brand} digest",
        "{title} - and more from {brand}",
        "Notes from {brand}, {month} edition",
        "{title}",
    ),
    "nws.head": ("The {brand} digest", "{month} newsletter", "This week", "In this issue"),
    "nws.intro": (
        "Here's what we've been up to lately.",
        "A few stories we think you'll enjoy this week.",
        "Welcome to the {month} edition of our newsletter.",
        "Grab a coffee - here's your roundup.",
        "A short round-up of news, guides and a few things we're excited about.",
    ),
    "nws.more": ("Read more", "Read the story", "Continue reading", "Read more →", "Full article"),
    "nws.outro": (
        "That's all for this issue. See you next time!",
        "Thanks for reading. Reply any time with ideas for future issues.",
        "Have a great week.",
        "Until next month.",
        "",
    ),
    "nws.titles": (
        "Five small changes that make a big difference",
        "Behind the scenes with our team",
        "What's new this month",
        "Answers to your most common questions",
        "Our favourite finds of {month}",
        "A customer story worth sharing",
        "How we're reducing our packaging",
        "Spring checklist: what to do this month",
    ),
    "nws.blurbs": (
        "A short guide from our team, with tips you can use straight away.",
        "We asked around the office and collected the best suggestions.",
        "Everything you need to know, in about three minutes.",
        "Plus a few ideas we're trying out ourselves.",
        "The story behind it, and what comes next.",
        "Practical advice with no fluff.",
    ),
    # promotion
    "prm.subj": (
        "{percent}% off {category} this weekend",
        "Our spring sale starts now",
        "Save {percent}% with code {code}",
        "New arrivals, plus {percent}% off for members",
        "Free shipping on everything until {edate}",
        "The {category} sale ends {edate}",
        "A little something for you: {percent}% off",
        "🌷 Spring sale: up to {percent}% off",
    ),
    "prm.head": (
        "Spring sale",
        "{percent}% off {category}",
        "Member offer",
        "Just landed",
        "Treat yourself",
    ),
    "prm.intro": (
        "Our spring sale is here: take {percent}% off {category} until {edate}.",
        "As a thank-you for being a subscriber, here's {percent}% off your next order.",
        "New pieces just arrived, and subscribers get first pick.",
        "Stock up on {category} - prices are down {percent}% for a few days.",
        "Whether you're treating yourself or someone else, now's a good time: "
        "{category} is {percent}% off.",
    ),
    "prm.code": (
        "Use code {code} at checkout.",
        "Enter {code} at checkout to apply the discount.",
        "Your code: {code}",
        "Code: {code}",
    ),
    "prm.terms": (
        "Offer valid until {edate} while stock lasts. Can't be combined with other promotions.",
        "Discount applies to full-price items only. Excludes gift cards.",
        "Free standard delivery on orders over {threshold}.",
        "One use per customer. Ends {edate} at midnight.",
    ),
    "prm.cta": (
        "Shop now",
        "Shop the sale",
        "See what's new",
        "Browse the offers",
        "Start shopping",
    ),
    "prm.cat": ("everything", "selected styles", "bestsellers", "new arrivals", "our spring range"),
    # reminders
    "rem.appt.subj": (
        "Reminder: your appointment on {adate}",
        "See you on {adate} at {time}",
        "Upcoming appointment with {provider}",
        "Appointment reminder from {brand}",
        "Your {service} is booked for {adate}",
    ),
    "rem.appt.intro": (
        "This is a friendly reminder of your upcoming {service} with {provider} at {brand}.",
        "We're looking forward to seeing you on {adate} at {time}.",
        "Your {service} is coming up. Here are the details.",
        "Just checking in before your appointment on {adate}.",
    ),
    "rem.appt.extra": (
        "Please arrive about ten minutes early.",
        "If you need to reschedule, let us know at least 24 hours in advance.",
        "Running late? Give us a call and we'll do our best to fit you in.",
        "Parking is available behind the building.",
    ),
    "rem.appt.cta": (
        "Manage appointment",
        "Reschedule or cancel",
        "Add to calendar",
        "View booking",
    ),
    "rem.stay.subj": (
        "Your stay at {hotel} is coming up",
        "Check-in on {adate}: booking {ref}",
        "Get ready for your trip to {city}",
        "{days} days to go until {city}",
    ),
    "rem.stay.intro": (
        "Your reservation at {hotel} in {city} is confirmed. Check-in starts at {time} on {adate}.",
        "Only {days} days until your trip to {city}! Here's everything you need for check-in.",
        "Just a reminder about your upcoming stay at {hotel}.",
    ),
    "rem.stay.extra": (
        "Free cancellation ends 48 hours before arrival.",
        "You can tell the property your arrival time from the booking page.",
        "Breakfast is included in your rate.",
    ),
    "rem.stay.cta": ("Manage booking", "View booking", "See booking details"),
    "rem.trip.subj": (
        "Check-in is open for your flight to {city}",
        "Your trip to {city} on {adate}",
        "Trip reminder: {origin} to {city}",
    ),
    "rem.trip.intro": (
        "Online check-in for flight {flight} from {origin} to {city} is now open.",
        "Your flight to {city} leaves on {adate} at {time}. Your booking details are below.",
        "Your journey from {origin} to {city} is coming up on {adate}.",
    ),
    "rem.trip.extra": (
        "Bag drop closes 45 minutes before departure.",
        "Your boarding pass will be available in the app after check-in.",
        "Remember to check the entry requirements for your destination.",
    ),
    "rem.trip.cta": ("Check in now", "View trip", "Manage booking"),
    "rem.service.health": (
        "check-up",
        "dental cleaning",
        "physiotherapy session",
        "eye exam",
        "follow-up visit",
    ),
    "rem.service.other": (
        "haircut",
        "car service",
        "personal training session",
        "massage",
        "colour appointment",
    ),
    # events
    "evt.subj": (
        "You're invited: {event}",
        "Join us for {event} on {edate}",
        "Save the date: {event}",
        "[Webinar] {event}",
        "Invitation: {event}",
        "{first}, join us at {event}",
    ),
    "evt.head": ("You're invited", "Join us", "Save the date", "{event}"),
    "evt.intro": (
        "We'd love for you to join us for {event} on {edate}.",
        "On {edate} we're hosting {event}, and you're invited.",
        "Join our team live for {event}. We'll cover {topic} and leave plenty of time "
        "for questions.",
        "Mark your calendar: {event} takes place on {edate}.",
    ),
    "evt.extra": (
        "Can't make it live? Register anyway and we'll send you the recording.",
        "Admission is free, and light refreshments will be served.",
        "The session lasts about {minutes} minutes, including Q&A.",
        "Feel free to bring a colleague.",
    ),
    "evt.cta": ("Register", "RSVP", "Save my seat", "Reserve a spot", "Register for free"),
    "evt.name": (
        "{brand} Spring Meetup",
        "{brand} Live: our 2026 roadmap",
        "Customer evening at our {city} store",
        "Webinar: {topic_title}",
        "{brand} Summit 2026",
        "Open house at {brand}",
        "{brand} Community Day",
    ),
    "evt.topic": (
        "getting started with automations",
        "planning your spring garden",
        "reporting best practices",
        "budgeting for freelancers",
        "what's new in version 5",
        "caring for leather goods",
        "running your first team retrospective",
    ),
    # saas
    "saa.upd.subj": (
        "What's new in {brand}: {feature}",
        "{brand} product update - {month}",
        "New in {brand}: {feature}",
        "{month} release notes",
        "A few improvements to {brand}",
    ),
    "saa.upd.intro": (
        "Here are the latest improvements we shipped this month.",
        "We've been busy! A few updates that should make your work easier:",
        "Thanks to your feedback, we've rolled out several changes.",
        "Quick summary of what changed in {brand} recently:",
    ),
    "saa.upd.extra": (
        "All changes are live for every plan today.",
        "As always, we'd love your feedback - it goes straight to the product team.",
        "Some features are rolling out gradually and may take a few days to reach your workspace.",
    ),
    "saa.upd.cta": ("See the changelog", "Try it now", "Open {brand}", "Read the release notes"),
    "saa.features": (
        "dark mode|Dark mode is now available on web and desktop.",
        "faster search|Search results across projects now load up to three times faster.",
        "CSV export|Export any report as CSV with one click.",
        "security keys|You can now use hardware security keys for two-step sign-in.",
        "audit log filters|Filter the audit log by user, action and date.",
        "calendar sync|Two-way sync with your calendar is here.",
        "custom roles|Create roles with exactly the permissions your team needs.",
        "offline mode|The mobile app now works offline and syncs when you reconnect.",
        "bulk editing|Select several items and change them all at once.",
        "scheduled reports|Have any report emailed to your team every week.",
    ),
    "saa.rep.subj": (
        "Your weekly {brand} report",
        "{workspace}: usage summary for {month}",
        "Your {brand} stats for the week of {wdate}",
        "Monthly usage report - {month}",
    ),
    "saa.rep.intro": (
        "Here's a summary of activity in the {workspace} workspace.",
        "Your team was busy last week. Here are the highlights.",
        "Your monthly usage report is ready.",
        "Below is how your plan usage looked over the past {days} days.",
    ),
    "saa.rep.extra": (
        "You're using {pct}% of your plan's storage.",
        "Reports are sent every Monday. You can change this in notification settings.",
        "Numbers are based on UTC days.",
    ),
    "saa.rep.cta": ("Open dashboard", "View full report", "See usage details"),
    # support
    "sup.subj.received": (
        "We've received your request (#{ticket})",
        "Request received: {issue}",
        "[{brand}] Request #{ticket}: {issue}",
    ),
    "sup.subj.replied": (
        "Re: {issue} [#{ticket}]",
        "Update on your request #{ticket}",
        "{agent} replied to your request",
    ),
    "sup.subj.solved": (
        "Your request #{ticket} has been solved",
        "[Solved] {issue}",
        "Resolved: {issue} (#{ticket})",
    ),
    "sup.intro.received": (
        "Thanks for contacting {brand} Support. Our team will get back to you "
        "within {hours} hours.",
        "We've got your message and created request #{ticket}. You'll hear "
        "from us soon, usually within one business day.",
    ),
    "sup.intro.replied": (
        "{agent} from our support team has replied to your request:",
        "There's a new reply on your request #{ticket}:",
    ),
    "sup.intro.solved": (
        "We've marked your request as solved. If anything else comes up, just "
        "reply and the conversation will reopen.",
        "We hope we were able to help! This request is now closed.",
    ),
    "sup.extra": (
        "You can reply to this email to add more information.",
        "Please keep the request number in the subject line if you write to us again.",
        "How did we do? A quick rating on the request page helps us improve.",
    ),
    "sup.cta": ("View request", "View your ticket", "Open the conversation"),
    "sup.issues": (
        "Refund for order {order}|Thanks for your patience. I've checked your account "
        "and issued the refund today; it should show up within 5-7 business days.",
        "Problem syncing my calendar|I've reset the sync on our side. Could you try "
        "again and let me know whether the problem continues?",
        "Question about my invoice|The invoice covers your March subscription plus "
        "one extra seat added on the 4th. The full breakdown is under Billing.",
        "Can't update my payment method|Thanks for the screenshot. That error was on "
        "our side and is fixed now, so updating the card should work.",
        "Item missing from my delivery|I'm sorry one item didn't arrive. A "
        "replacement is on its way and you don't need to send anything back.",
        "Change of delivery address|No problem - I've updated the address on your "
        "order before it was dispatched.",
    ),
}

_DE: dict[str, tuple[str, ...]] = {
    "first": (
        "Anna",
        "Lukas",
        "Sophie",
        "Jonas",
        "Lea",
        "Felix",
        "Mia",
        "Paul",
        "Hannah",
        "Tim",
        "Emre",
        "Katharina",
        "Jan",
        "Laura",
        "Mehmet",
        "Julia",
    ),
    "last": (
        "Müller",
        "Schmidt",
        "Weber",
        "Wagner",
        "Becker",
        "Hoffmann",
        "Keller",
        "Yılmaz",
        "Richter",
        "Krause",
        "Neumann",
        "Braun",
        "Zimmermann",
        "Hartmann",
    ),
    "greet": ("Hallo {first},", "Guten Tag {first} {last},", "Hallo,", "Guten Tag,", "Hi {first},"),
    "closing": ("Viele Grüße", "Mit freundlichen Grüßen", "Beste Grüße", "", "Herzliche Grüße"),
    "team": ("Ihr {brand}-Team", "{brand} Kundenservice", "{agent} von {brand}", "{brand}"),
    "dept": ("Kundenservice", "Team", "Service"),
    "help": (
        "Fragen? Antworten Sie einfach auf diese E-Mail.",
        "Bei Fragen erreichen Sie uns direkt per Antwort auf diese Nachricht.",
    ),
    "help_noreply": (
        "Bei Fragen hilft Ihnen unser Kundenservice gerne weiter.",
        "Antworten auf häufige Fragen finden Sie in unserem Hilfebereich.",
    ),
    "foot_tx": (
        "Sie erhalten diese E-Mail, weil Sie ein Kundenkonto bei {brand} haben.",
        "Diese Nachricht wurde an {email} gesendet.",
        "Dies ist eine Servicenachricht zu Ihrem {brand}-Konto.",
    ),
    "foot_mk": (
        "Sie erhalten diesen Newsletter, weil Sie sich bei {brand} angemeldet haben.",
        "Dieser Newsletter wurde an {email} gesendet.",
        "Sie haben unsere E-Mails auf {domain} abonniert.",
    ),
    "unsub": ("Abmelden", "Newsletter abbestellen", "Vom Newsletter abmelden"),
    "prefs": ("Einstellungen verwalten", "E-Mail-Einstellungen"),
    "privacy": ("Datenschutz", "Datenschutzerklärung"),
    "helpc": ("Hilfe", "Kontakt", "Hilfe & Kontakt", "Impressum"),
    "account": ("Mein Konto", "Kundenkonto"),
    "view_online": (
        "Im Browser anzeigen",
        "Online-Version",
        "Wird diese E-Mail nicht richtig angezeigt? Zur Webversion",
    ),
    "rights": ("Alle Rechte vorbehalten.", ""),
    "nav": ("Neuheiten|/neu", "Bestseller|/bestseller", "Sale|/sale", "Gutscheine|/gutscheine"),
    "on": ("auf", "unter"),
    "window": ("{a} und {b} Uhr", "{a} - {b} Uhr"),
    "cities_signin": (
        "München, Deutschland",
        "Hamburg, Deutschland",
        "Wien, Österreich",
        "Zürich, Schweiz",
        "Köln, Deutschland",
        "Dresden, Deutschland",
    ),
    "cities": ("Lissabon", "Hamburg", "Wien", "Barcelona", "Kopenhagen", "Rom", "Prag"),
    "hotel": ("Hotel {x}", "{x} Hof", "Landhaus {x}", "{x} Suites"),
    "free": ("Kostenlos", "Gratis", "0,00 €"),
    "l.order_no": ("Bestellnummer", "Bestell-Nr."),
    "l.order_date": ("Bestelldatum", "Bestellt am"),
    "l.item": ("Artikel", "Produkt"),
    "l.qty": ("Menge", "Anzahl"),
    "l.price": ("Preis", "Betrag"),
    "l.subtotal": ("Zwischensumme",),
    "l.shipping": ("Versand", "Versandkosten"),
    "l.tax": ("MwSt.",),
    "l.vat": ("inkl. MwSt.", "davon MwSt."),
    "l.total": ("Gesamt", "Gesamtsumme", "Gesamtbetrag"),
    "l.ship_to": ("Lieferadresse", "Lieferung an"),
    "l.eta": ("Voraussichtliche Zustellung", "Lieferung voraussichtlich"),
    "l.payment": ("Zahlungsart", "Bezahlt mit"),
    "l.invoice": ("Rechnungsnummer", "Beleg-Nr."),
    "l.date_paid": ("Zahlungsdatum", "Datum"),
    "l.amount": ("Betrag", "Gezahlter Betrag"),
    "l.tracking": ("Sendungsnummer",),
    "l.carrier": ("Versanddienstleister", "Versand mit"),
    "l.device": ("Gerät",),
    "l.location": ("Standort", "Ungefährer Standort"),
    "l.when": ("Wann", "Datum"),
    "l.time": ("Uhrzeit", "Beginn"),
    "l.where": ("Ort", "Wo"),
    "l.plan": ("Tarif", "Abo"),
    "l.renews": ("Verlängerung am", "Nächste Abbuchung"),
    "l.account_end": ("Konto endet auf", "Karte endet auf"),
    "l.balance": ("Saldo", "Neuer Saldo", "Rechnungsbetrag"),
    "l.min_pay": ("Mindestbetrag",),
    "l.due": ("Fällig am", "Abbuchung am"),
    "l.period": ("Zeitraum", "Abrechnungszeitraum"),
    "l.ref": ("Buchungsnummer", "Referenz"),
    "l.with": ("Bei", "Behandler/in"),
    "l.ticket": ("Anfrage", "Ticketnummer"),
    "l.status": ("Status",),
    "l.workspace": ("Workspace", "Team"),
    "l.online": ("Online", "Online (Link nach Anmeldung)"),
    "l.service": ("Termin", "Leistung"),
    "l.checkin": ("Anreise", "Check-in"),
    "l.checkout": ("Abreise", "Check-out"),
    "l.flight": ("Flug", "Flugnummer"),
    "l.depart": ("Abflug",),
    "l.m_users": ("Aktive Nutzer",),
    "l.m_projects": ("Projekte",),
    "l.m_storage": ("Belegter Speicher",),
    "l.m_requests": ("API-Anfragen",),
    "l.m_uptime": ("Verfügbarkeit",),
    "ord.subj": (
        "Ihre Bestellung {order} bei {brand}",
        "Bestellbestätigung Nr. {order}",
        "Vielen Dank für Ihre Bestellung!",
    ),
    "ord.head": ("Vielen Dank für Ihre Bestellung", "Bestellung eingegangen"),
    "ord.intro": (
        "Vielen Dank für Ihren Einkauf bei {brand}. Wir haben Ihre Bestellung erhalten "
        "und bereiten sie für den Versand vor.",
        "Hiermit bestätigen wir Ihre Bestellung vom {odate}. Eine Übersicht finden Sie unten.",
        "Ihre Zahlung ist eingegangen, und Ihre Bestellung wird jetzt gepackt.",
    ),
    "ord.extra": (
        "Sobald das Paket unterwegs ist, erhalten Sie eine Versandbestätigung mit Sendungsnummer.",
        "Sie können Artikel innerhalb von 30 Tagen kostenlos zurücksenden.",
    ),
    "ord.cta": ("Bestellung ansehen", "Bestelldetails"),
    "shp.subj.shipped": (
        "Ihre Bestellung {order} wurde versandt",
        "Ihr {brand}-Paket ist unterwegs",
    ),
    "shp.subj.out": ("Ihr Paket kommt heute", "Bestellung {order} ist in Zustellung"),
    "shp.subj.delivered": ("Zugestellt: Ihre Bestellung {order}", "Ihr Paket wurde zugestellt"),
    "shp.head.shipped": ("Ihr Paket ist unterwegs", "Versandbestätigung"),
    "shp.head.out": ("Heute in Zustellung", "Ihr Paket kommt heute"),
    "shp.head.delivered": ("Zugestellt", "Ihr Paket ist da"),
    "shp.intro.shipped": (
        "Ihr Paket wurde an {carrier} übergeben und kommt voraussichtlich am {ddate} an.",
        "Gute Nachrichten: Ihre Bestellung hat heute unser Lager verlassen.",
    ),
    "shp.intro.out": (
        "Ihr Paket ist beim Zusteller und kommt voraussichtlich zwischen {window}.",
        "{carrier} stellt Ihre Sendung heute zu.",
    ),
    "shp.intro.delivered": (
        "Ihr Paket wurde am {ddate} um {time} {spot}.",
        "Laut Sendungsverfolgung wurde Ihre Bestellung heute zugestellt. Viel Freude damit!",
    ),
    "shp.spot": (
        "vor der Haustür abgelegt",
        "bei einem Nachbarn abgegeben",
        "im Paketkasten hinterlegt",
    ),
    "shp.extra": (
        "Es kann einige Stunden dauern, bis die Sendungsverfolgung aktualisiert ist.",
        "Auf der Sendungsseite können Sie einen Ablageort oder eine Filiale wählen.",
    ),
    "shp.cta": ("Sendung verfolgen", "Zur Sendungsverfolgung"),
    "rcp.subj": (
        "Ihre Zahlungsbestätigung von {brand}",
        "Beleg für Ihre Zahlung über {total}",
        "Rechnung {invoice} - bezahlt",
    ),
    "rcp.head": ("Zahlung erhalten", "Vielen Dank für Ihre Zahlung"),
    "rcp.intro": (
        "Wir haben Ihre Zahlung über {total} erhalten. Den Beleg finden Sie unten.",
        "Vielen Dank! Ihre Zahlung für {desc} war erfolgreich.",
    ),
    "rcp.extra": (
        "Die Abbuchung erscheint auf Ihrem Kontoauszug als {descriptor}.",
        "Alle Rechnungen finden Sie jederzeit in Ihrem Kundenkonto.",
    ),
    "rcp.cta": ("Beleg herunterladen", "Rechnung ansehen"),
    "rcp.desc": ("Bestellung {order}", "Ihr Abo {plan}", "Rechnung {invoice}"),
    "rcp.proc": ("Die Zahlung wurde von {processor} im Auftrag von {brand} abgewickelt.",),
    "sub.subj.up": (
        "Ihr Abo {plan} verlängert sich am {rdate}",
        "Erinnerung: Verlängerung Ihres {brand}-Abos",
    ),
    "sub.subj.done": ("Ihr {brand}-Abo wurde verlängert", "Danke, dass Sie bei {brand} bleiben"),
    "sub.head.up": ("Ihr Abo verlängert sich bald", "Erinnerung"),
    "sub.head.done": ("Abo verlängert", "Alles erledigt"),
    "sub.intro.up": (
        "Ihr Tarif {plan} verlängert sich automatisch am {rdate}. Wir buchen dann "
        "{amount} über {method} ab.",
        "Nur zur Erinnerung: Ihr Abo verlängert sich am {rdate}. Sie müssen nichts weiter tun.",
    ),
    "sub.intro.done": (
        "Ihr Abo {plan} wurde bis zum {rdate} verlängert.",
        "Wir haben Ihren Tarif {plan} verlängert und {amount} über {method} abgerechnet.",
    ),
    "sub.extra": (
        "Sie können Ihren Tarif jederzeit in den Kontoeinstellungen ändern oder kündigen.",
        "Alle Preise inklusive MwSt.",
    ),
    "sub.cta": ("Abo verwalten", "Zu den Einstellungen"),
    "pwd.subj": ("Passwort zurücksetzen", "Ihre Anfrage zum Zurücksetzen des Passworts"),
    "pwd.head": ("Neues Passwort festlegen", "Passwort zurücksetzen"),
    "pwd.intro": (
        "Wir haben eine Anfrage erhalten, das Passwort für Ihr {brand}-Konto ({email}) "
        "zurückzusetzen.",
        "Sie haben gerade ein neues Passwort angefordert. Über den folgenden Link "
        "können Sie es festlegen.",
    ),
    "pwd.expiry": ("Der Link ist {minutes} Minuten gültig und kann nur einmal verwendet werden.",),
    "pwd.ignore": (
        "Falls Sie das nicht waren, können Sie diese E-Mail ignorieren. Ihr Passwort "
        "bleibt unverändert.",
    ),
    "pwd.cta": ("Passwort zurücksetzen", "Neues Passwort festlegen"),
    "pwd.code": (
        "Geben Sie diesen Code in der {brand}-App ein, um ein neues Passwort festzulegen:",
        "Ihr Code zum Zurücksetzen:",
    ),
    "sgn.subj": (
        "Neue Anmeldung bei Ihrem {brand}-Konto",
        "Sicherheitshinweis: Anmeldung auf {device}",
    ),
    "sgn.head": ("Neue Anmeldung", "Sicherheitshinweis"),
    "sgn.intro": (
        "Wir haben eine neue Anmeldung bei Ihrem {brand}-Konto auf {device} festgestellt.",
        "Ihr Konto ({email}) wurde gerade auf einem neuen Gerät verwendet.",
    ),
    "sgn.ok": ("Wenn Sie das waren, müssen Sie nichts tun.",),
    "sgn.notme": (
        "Falls nicht, ändern Sie bitte Ihr Passwort in den Kontoeinstellungen und "
        "melden Sie andere Sitzungen ab.",
    ),
    "sgn.cta": ("Aktivität prüfen", "Sicherheitseinstellungen"),
    "stm.subj": (
        "Ihr Kontoauszug für {month} ist verfügbar",
        "Ihre {brand}-Rechnung für {month} ist da",
    ),
    "stm.head": ("Neuer Kontoauszug", "Ihre Rechnung ist da"),
    "stm.intro": (
        "Ihr Auszug für den Zeitraum bis {sdate} steht jetzt im Online-Banking bereit.",
        "Ihre Monatsrechnung ist fertig. Melden Sie sich an, um alle Details zu sehen.",
    ),
    "stm.extra": (
        "Aus Sicherheitsgründen versenden wir Auszüge nicht als Anhang.",
        "Bei Lastschrift wird der Betrag zum Fälligkeitsdatum eingezogen.",
    ),
    "stm.cta": ("Auszug ansehen", "Zum Postfach"),
    "nws.subj": ("{brand} Newsletter: {title}", "Neues von {brand} im {month}"),
    "nws.head": ("Neues von {brand}", "Newsletter {month}"),
    "nws.intro": (
        "Das gibt es Neues bei uns.",
        "Willkommen zur {month}-Ausgabe unseres Newsletters.",
    ),
    "nws.more": ("Weiterlesen", "Mehr erfahren"),
    "nws.outro": ("Viel Spaß beim Lesen!", "Bis zur nächsten Ausgabe."),
    "nws.titles": (
        "Fünf Tipps für einen entspannten Frühling",
        "Ein Blick hinter die Kulissen",
        "Neu im Sortiment",
        "So holen Sie mehr aus Ihrem Konto heraus",
        "Unsere Empfehlungen für den {month}",
    ),
    "nws.blurbs": (
        "Kurz und praktisch: Tipps, die Sie sofort umsetzen können.",
        "Wir stellen Ihnen die Menschen hinter unseren Produkten vor.",
        "Alles Wichtige in drei Minuten.",
    ),
    "prm.subj": (
        "{percent} % Rabatt auf {category}",
        "Frühlingsangebote bei {brand}",
        "Nur bis {edate}: {percent} % sparen",
    ),
    "prm.head": ("Frühlingsaktion", "{percent} % Rabatt"),
    "prm.intro": (
        "Nur bis zum {edate}: {percent} % Rabatt auf {category}.",
        "Als Dankeschön für Ihr Abonnement erhalten Sie {percent} % auf Ihre nächste Bestellung.",
    ),
    "prm.code": ("Mit dem Code {code} an der Kasse einlösen.", "Ihr Code: {code}"),
    "prm.terms": (
        "Gültig bis {edate}, solange der Vorrat reicht. Nicht mit anderen Aktionen kombinierbar.",
        "Versandkostenfrei ab {threshold}.",
    ),
    "prm.cta": ("Jetzt entdecken", "Zum Angebot"),
    "prm.cat": ("ausgewählte Artikel", "das gesamte Sortiment", "Neuheiten"),
    "rem.appt.subj": ("Erinnerung an Ihren Termin am {adate}", "Ihr Termin bei {brand} am {adate}"),
    "rem.appt.intro": (
        "Wir möchten Sie an Ihren Termin ({service}) bei {provider} erinnern.",
        "Wir freuen uns auf Sie am {adate} um {time}.",
    ),
    "rem.appt.extra": (
        "Bitte kommen Sie etwa zehn Minuten früher.",
        "Falls Sie den Termin nicht wahrnehmen können, sagen Sie bitte spätestens "
        "24 Stunden vorher ab.",
    ),
    "rem.appt.cta": ("Termin verwalten", "Termin verschieben"),
    "rem.stay.subj": ("Ihr Aufenthalt in {city} rückt näher", "Check-in am {adate}: Buchung {ref}"),
    "rem.stay.intro": (
        "Ihre Reservierung im {hotel} in {city} ist bestätigt. Check-in ist ab "
        "{time} am {adate} möglich.",
        "Nur noch {days} Tage bis zu Ihrer Reise nach {city}!",
    ),
    "rem.stay.extra": ("Die kostenlose Stornierung endet 48 Stunden vor der Anreise.",),
    "rem.stay.cta": ("Buchung verwalten", "Buchung ansehen"),
    "rem.trip.subj": (
        "Online-Check-in für Ihren Flug nach {city} ist geöffnet",
        "Ihre Reise nach {city} am {adate}",
    ),
    "rem.trip.intro": (
        "Der Online-Check-in für Flug {flight} von {origin} nach {city} ist jetzt möglich.",
        "Ihre Reise von {origin} nach {city} steht bevor: Abflug am {adate} um {time}.",
    ),
    "rem.trip.extra": ("Ihre Bordkarte finden Sie nach dem Check-in in der App.",),
    "rem.trip.cta": ("Jetzt einchecken", "Reise ansehen"),
    "rem.service.health": ("Kontrolluntersuchung", "Zahnreinigung", "Physiotherapie"),
    "rem.service.other": ("Haarschnitt", "Inspektion", "Massage"),
    "evt.subj": ("Einladung: {event}", "Seien Sie dabei: {event} am {edate}"),
    "evt.head": ("Sie sind eingeladen", "Termin vormerken"),
    "evt.intro": (
        "Wir laden Sie herzlich ein: {event} am {edate}.",
        "Am {edate} ist es so weit: {event}. Thema: {topic}.",
    ),
    "evt.extra": (
        "Die Teilnahme ist kostenlos.",
        "Sie können nicht live dabei sein? Melden Sie sich trotzdem an, dann schicken "
        "wir Ihnen die Aufzeichnung.",
    ),
    "evt.cta": ("Jetzt anmelden", "Platz reservieren"),
    "evt.name": (
        "{brand} Frühlingstreffen 2026",
        "Webinar: {topic_title}",
        "Kundenabend in {city}",
    ),
    "evt.topic": (
        "Automatisierung im Alltag",
        "die neuen Funktionen im Überblick",
        "Budgetplanung für Selbstständige",
    ),
    "saa.upd.subj": ("Neu bei {brand}: {feature}", "Produktneuigkeiten im {month}"),
    "saa.upd.intro": (
        "Das haben wir in diesem Monat für Sie verbessert.",
        "Dank Ihres Feedbacks gibt es einige Neuerungen:",
    ),
    "saa.upd.extra": ("Alle Änderungen sind ab heute in allen Tarifen verfügbar.",),
    "saa.upd.cta": ("Zum Changelog", "{brand} öffnen"),
    "saa.features": (
        "Dunkelmodus|Der Dunkelmodus ist jetzt im Web und auf dem Desktop verfügbar.",
        "CSV-Export|Berichte lassen sich jetzt mit einem Klick als CSV exportieren.",
        "schnellere Suche|Die Suche über alle Projekte ist jetzt deutlich schneller.",
        "Sicherheitsschlüssel|Sie können jetzt Hardware-Sicherheitsschlüssel für die "
        "Zwei-Faktor-Anmeldung nutzen.",
    ),
    "saa.rep.subj": ("Ihr Wochenbericht von {brand}", "{workspace}: Nutzung im {month}"),
    "saa.rep.intro": (
        "Hier ist eine Übersicht der Aktivitäten im Workspace {workspace}.",
        "Ihr monatlicher Nutzungsbericht ist da.",
    ),
    "saa.rep.extra": ("Sie nutzen {pct} % des Speichers Ihres Tarifs.",),
    "saa.rep.cta": ("Dashboard öffnen", "Vollständigen Bericht ansehen"),
    "sup.subj.received": ("Ihre Anfrage ist eingegangen (#{ticket})", "Anfrage #{ticket}: {issue}"),
    "sup.subj.replied": ("Re: {issue} [#{ticket}]", "Neue Antwort auf Ihre Anfrage #{ticket}"),
    "sup.subj.solved": ("Ihre Anfrage #{ticket} wurde gelöst", "Erledigt: {issue}"),
    "sup.intro.received": (
        "Vielen Dank für Ihre Nachricht an den {brand}-Kundenservice. Wir "
        "melden uns innerhalb von {hours} Stunden.",
    ),
    "sup.intro.replied": ("{agent} aus unserem Support-Team hat geantwortet:",),
    "sup.intro.solved": (
        "Wir haben Ihre Anfrage als gelöst markiert. Antworten Sie einfach auf "
        "diese E-Mail, falls noch etwas offen ist.",
    ),
    "sup.extra": ("Sie können auf diese E-Mail antworten, um weitere Informationen hinzuzufügen.",),
    "sup.cta": ("Anfrage ansehen", "Zur Anfrage"),
    "sup.issues": (
        "Erstattung für Bestellung {order}|Vielen Dank für Ihre Geduld. Die "
        "Erstattung wurde heute veranlasst und sollte in 5-7 Werktagen auf Ihrem "
        "Konto sein.",
        "Frage zu meiner Rechnung|Die Rechnung enthält die Gebühren für März. Eine "
        "aufgeschlüsselte Übersicht finden Sie in Ihrem Kundenkonto unter "
        "„Rechnungen“.",
        "Artikel fehlt in meiner Lieferung|Das tut uns leid! Wir haben den fehlenden "
        "Artikel heute nachgeschickt - Sie müssen nichts weiter tun.",
    ),
    "prod.fashion": (
        "Strickpullover aus Merinowolle|59|129",
        "Leinenhemd, Größe M|39|79",
        "Regenjacke „Nordwind“|89|179",
        "Baumwoll-Socken (3er-Pack)|12|19",
    ),
    "prod.electronics": (
        "USB-C-Ladekabel, 2 m|9|19",
        "Bluetooth-Kopfhörer|49|149",
        "Smarte Steckdose (2er-Set)|24|39",
        "Tastatur mit Ziffernblock|29|69",
    ),
    "prod.home": (
        "Leinen-Bettwäsche 135×200|69|119",
        "Gusseisenpfanne 26 cm|39|79",
        "Frottee-Handtücher (4 Stück)|29|49",
        "Tischleuchte aus Messing|59|139",
    ),
    "prod.grocery": (
        "Kaffeebohnen Espresso 1 kg|16|29",
        "Bio-Haferflocken 1 kg|3|6",
        "Olivenöl nativ extra 0,75 l|9|19",
        "Kräutertee-Auswahl (40 Beutel)|6|12",
    ),
}

_FR: dict[str, tuple[str, ...]] = {
    "first": (
        "Camille",
        "Louis",
        "Chloé",
        "Hugo",
        "Manon",
        "Théo",
        "Inès",
        "Julien",
        "Léa",
        "Karim",
        "Sarah",
        "Antoine",
        "Élodie",
        "Nicolas",
    ),
    "last": (
        "Martin",
        "Bernard",
        "Dubois",
        "Lefèvre",
        "Moreau",
        "Laurent",
        "Girard",
        "Roux",
        "Fournier",
        "Benali",
        "Mercier",
        "Blanc",
    ),
    "greet": (
        "Bonjour {first},",
        "Bonjour,",
        "Bonjour {first} {last},",
        "Chère cliente, cher client,",
    ),
    "closing": ("À bientôt,", "Cordialement,", "Merci,", "Bien à vous,", ""),
    "team": ("L'équipe {brand}", "Le service client {brand}", "{agent}, pour {brand}", "{brand}"),
    "dept": ("Service client", "Équipe"),
    "help": (
        "Une question ? Répondez simplement à cet e-mail.",
        "Pour toute question, il suffit de répondre à ce message.",
    ),
    "help_noreply": (
        "Notre service client reste à votre disposition pour toute question.",
        "Retrouvez les réponses aux questions fréquentes dans notre centre d'aide.",
    ),
    "foot_tx": (
        "Vous recevez cet e-mail car vous avez un compte {brand}.",
        "Ce message a été envoyé à {email}.",
        "Ceci est un message de service concernant votre compte {brand}.",
    ),
    "foot_mk": (
        "Vous recevez cette newsletter car vous vous êtes inscrit sur {domain}.",
        "Cet e-mail a été envoyé à {email}.",
        "Vous êtes abonné aux actualités de {brand}.",
    ),
    "unsub": ("Se désinscrire", "Se désabonner", "Me désabonner"),
    "prefs": ("Gérer mes préférences", "Préférences e-mail"),
    "privacy": ("Confidentialité", "Politique de confidentialité"),
    "helpc": ("Aide", "Nous contacter", "Centre d'aide", "Mentions légales"),
    "account": ("Mon compte", "Espace client"),
    "view_online": ("Voir dans le navigateur", "Version en ligne", "Afficher la version web"),
    "rights": ("Tous droits réservés.", ""),
    "nav": (
        "Nouveautés|/nouveautes",
        "Meilleures ventes|/meilleures-ventes",
        "Soldes|/soldes",
        "Cartes cadeaux|/cartes-cadeaux",
    ),
    "on": ("sur",),
    "window": ("{a} et {b}",),
    "cities_signin": (
        "Lyon, France",
        "Paris, France",
        "Bruxelles, Belgique",
        "Toulouse, France",
        "Genève, Suisse",
        "Rennes, France",
    ),
    "cities": ("Lisbonne", "Marseille", "Genève", "Barcelone", "Nantes", "Rome", "Annecy"),
    "hotel": ("Hôtel {x}", "Maison {x}", "Le Clos {x}", "Hôtel du {x}"),
    "free": ("Offerte", "Gratuite", "0,00 €"),
    "l.order_no": ("Numéro de commande", "Commande n°"),
    "l.order_date": ("Date de commande", "Commandé le"),
    "l.item": ("Article", "Produit"),
    "l.qty": ("Qté", "Quantité"),
    "l.price": ("Prix", "Montant"),
    "l.subtotal": ("Sous-total",),
    "l.shipping": ("Livraison", "Frais de port"),
    "l.tax": ("TVA",),
    "l.vat": ("dont TVA", "TVA incluse"),
    "l.total": ("Total", "Total TTC"),
    "l.ship_to": ("Adresse de livraison", "Livraison à"),
    "l.eta": ("Livraison estimée", "Livraison prévue"),
    "l.payment": ("Moyen de paiement", "Payé avec"),
    "l.invoice": ("Numéro de facture", "Reçu n°"),
    "l.date_paid": ("Date de paiement", "Date"),
    "l.amount": ("Montant", "Montant payé"),
    "l.tracking": ("Numéro de suivi",),
    "l.carrier": ("Transporteur",),
    "l.device": ("Appareil",),
    "l.location": ("Lieu", "Localisation approximative"),
    "l.when": ("Quand", "Date"),
    "l.time": ("Heure", "Début"),
    "l.where": ("Lieu", "Où"),
    "l.plan": ("Formule", "Abonnement"),
    "l.renews": ("Date de renouvellement", "Prochain prélèvement"),
    "l.account_end": ("Compte se terminant par", "Carte se terminant par"),
    "l.balance": ("Solde", "Nouveau solde", "Montant de la facture"),
    "l.min_pay": ("Paiement minimum",),
    "l.due": ("Échéance", "Date d'échéance"),
    "l.period": ("Période",),
    "l.ref": ("Référence de réservation", "N° de confirmation"),
    "l.with": ("Avec", "Praticien"),
    "l.ticket": ("Demande", "Ticket"),
    "l.status": ("Statut",),
    "l.workspace": ("Espace de travail", "Équipe"),
    "l.online": ("En ligne",),
    "l.service": ("Rendez-vous", "Prestation"),
    "l.checkin": ("Arrivée",),
    "l.checkout": ("Départ",),
    "l.flight": ("Vol", "Numéro de vol"),
    "l.depart": ("Départ",),
    "l.m_users": ("Utilisateurs actifs",),
    "l.m_projects": ("Projets",),
    "l.m_storage": ("Stockage utilisé",),
    "l.m_requests": ("Requêtes API",),
    "l.m_uptime": ("Disponibilité",),
    "ord.subj": (
        "Confirmation de votre commande {order}",
        "Merci pour votre commande, {first} !",
        "{brand} : commande n° {order} reçue",
    ),
    "ord.head": ("Merci pour votre commande", "Commande confirmée"),
    "ord.intro": (
        "Merci d'avoir choisi {brand}. Nous avons bien reçu votre commande et nous la préparons.",
        "Nous vous confirmons votre commande du {odate}. Vous en trouverez le "
        "récapitulatif ci-dessous.",
        "Votre paiement a été accepté et votre commande est en cours de préparation.",
    ),
    "ord.extra": (
        "Vous recevrez un e-mail avec le numéro de suivi dès l'expédition du colis.",
        "Les retours sont gratuits pendant 30 jours.",
    ),
    "ord.cta": ("Voir ma commande", "Suivre ma commande"),
    "shp.subj.shipped": (
        "Votre commande {order} a été expédiée",
        "Votre colis {brand} est en route",
    ),
    "shp.subj.out": ("Votre colis arrive aujourd'hui", "Commande {order} en cours de livraison"),
    "shp.subj.delivered": ("Livrée : votre commande {order}", "Votre colis a été livré"),
    "shp.head.shipped": ("Votre colis est en route", "Commande expédiée"),
    "shp.head.out": ("Livraison aujourd'hui", "En cours de livraison"),
    "shp.head.delivered": ("Livré", "Votre colis est arrivé"),
    "shp.intro.shipped": (
        "Votre colis a été confié à {carrier} et devrait arriver le {ddate}.",
        "Bonne nouvelle : votre commande a quitté notre entrepôt aujourd'hui.",
    ),
    "shp.intro.out": (
        "Votre colis est chez le livreur et devrait arriver entre {window}.",
        "{carrier} livrera votre colis aujourd'hui.",
    ),
    "shp.intro.delivered": (
        "Votre colis a été livré le {ddate} à {time} et {spot}.",
        "Votre commande a bien été livrée. Nous espérons qu'elle vous plaira !",
    ),
    "shp.spot": (
        "déposé devant votre porte",
        "remis à un voisin",
        "déposé dans votre boîte aux lettres",
    ),
    "shp.extra": (
        "Le suivi peut mettre quelques heures à se mettre à jour.",
        "Depuis la page de suivi, vous pouvez choisir un point relais.",
    ),
    "shp.cta": ("Suivre mon colis", "Voir le suivi"),
    "rcp.subj": (
        "Votre reçu {brand}",
        "Reçu pour votre paiement de {total}",
        "Facture {invoice} réglée",
    ),
    "rcp.head": ("Paiement reçu", "Merci pour votre paiement"),
    "rcp.intro": (
        "Nous avons bien reçu votre paiement de {total}. Vous trouverez le reçu ci-dessous.",
        "Merci ! Votre paiement pour {desc} a bien été effectué.",
    ),
    "rcp.extra": (
        "Le débit apparaîtra sur votre relevé sous le libellé {descriptor}.",
        "Toutes vos factures sont disponibles dans votre espace client.",
    ),
    "rcp.cta": ("Télécharger le reçu", "Voir la facture"),
    "rcp.desc": ("la commande {order}", "votre abonnement {plan}", "la facture {invoice}"),
    "rcp.proc": ("Ce paiement a été traité par {processor} pour le compte de {brand}.",),
    "sub.subj.up": (
        "Votre abonnement {plan} sera renouvelé le {rdate}",
        "Rappel : renouvellement de votre abonnement {brand}",
    ),
    "sub.subj.done": (
        "Votre abonnement {brand} a été renouvelé",
        "Merci de votre fidélité à {brand}",
    ),
    "sub.head.up": ("Renouvellement à venir", "Petit rappel"),
    "sub.head.done": ("Abonnement renouvelé", "C'est tout bon"),
    "sub.intro.up": (
        "Votre formule {plan} sera renouvelée automatiquement le {rdate} ; nous "
        "débiterons {amount} sur {method}.",
        "Petit rappel : votre abonnement est renouvelé le {rdate}. Vous n'avez rien à faire.",
    ),
    "sub.intro.done": (
        "Votre abonnement {plan} a été renouvelé jusqu'au {rdate}.",
        "Nous avons renouvelé votre formule {plan} et débité {amount} sur {method}.",
    ),
    "sub.extra": (
        "Vous pouvez changer de formule ou résilier à tout moment depuis votre compte.",
        "Prix TTC.",
    ),
    "sub.cta": ("Gérer mon abonnement", "Voir mon compte"),
    "pwd.subj": (
        "Réinitialisation de votre mot de passe",
        "Votre demande de nouveau mot de passe {brand}",
    ),
    "pwd.head": ("Nouveau mot de passe", "Réinitialisation du mot de passe"),
    "pwd.intro": (
        "Nous avons reçu une demande de réinitialisation du mot de passe de votre "
        "compte {brand} ({email}).",
        "Vous venez de demander un nouveau mot de passe. Utilisez le lien ci-dessous "
        "pour le choisir.",
    ),
    "pwd.expiry": (
        "Ce lien est valable {minutes} minutes et ne peut être utilisé qu'une seule fois.",
    ),
    "pwd.ignore": (
        "Si vous n'êtes pas à l'origine de cette demande, ignorez simplement cet "
        "e-mail : votre mot de passe ne changera pas.",
    ),
    "pwd.cta": ("Réinitialiser le mot de passe", "Choisir un nouveau mot de passe"),
    "pwd.code": (
        "Saisissez ce code dans l'application {brand} pour choisir un nouveau mot de passe :",
        "Votre code de réinitialisation :",
    ),
    "sgn.subj": (
        "Nouvelle connexion à votre compte {brand}",
        "Alerte de sécurité : connexion depuis {device}",
    ),
    "sgn.head": ("Nouvelle connexion", "Alerte de sécurité"),
    "sgn.intro": (
        "Nous avons détecté une nouvelle connexion à votre compte {brand} depuis {device}.",
        "Votre compte ({email}) vient d'être utilisé sur un nouvel appareil.",
    ),
    "sgn.ok": ("Si c'était vous, vous n'avez rien à faire.",),
    "sgn.notme": (
        "Sinon, modifiez votre mot de passe depuis les paramètres de votre compte et "
        "déconnectez les autres sessions.",
    ),
    "sgn.cta": ("Voir l'activité récente", "Paramètres de sécurité"),
    "stm.subj": (
        "Votre relevé de {month} est disponible",
        "Votre facture {brand} de {month} est prête",
    ),
    "stm.head": ("Nouveau relevé", "Votre facture est prête"),
    "stm.intro": (
        "Votre relevé pour la période se terminant le {sdate} est disponible dans "
        "votre espace client.",
        "Votre facture mensuelle est prête. Connectez-vous pour voir le détail.",
    ),
    "stm.extra": (
        "Pour votre sécurité, nous n'envoyons jamais de relevé en pièce jointe.",
        "En cas de prélèvement automatique, le montant sera débité à l'échéance.",
    ),
    "stm.cta": ("Voir mon relevé", "Accéder à mes documents"),
    "nws.subj": ("La lettre {brand} : {title}", "Les nouvelles de {month} chez {brand}"),
    "nws.head": ("La lettre {brand}", "Édition de {month}"),
    "nws.intro": (
        "Voici les dernières nouvelles de {brand}.",
        "Bienvenue dans l'édition de {month} de notre newsletter.",
    ),
    "nws.more": ("Lire la suite", "En savoir plus"),
    "nws.outro": ("Bonne lecture !", "À la prochaine édition."),
    "nws.titles": (
        "Cinq idées pour bien commencer le printemps",
        "Dans les coulisses de notre atelier",
        "Les nouveautés du mois",
        "Nos conseils pour mieux utiliser votre compte",
        "Nos coups de cœur de {month}",
    ),
    "nws.blurbs": (
        "Des conseils simples, à appliquer tout de suite.",
        "Rencontre avec les personnes qui font {brand} au quotidien.",
        "L'essentiel en trois minutes de lecture.",
    ),
    "prm.subj": (
        "-{percent} % sur {category}",
        "Les offres de printemps sont là",
        "Jusqu'au {edate} : -{percent} %",
    ),
    "prm.head": ("Offres de printemps", "-{percent} %"),
    "prm.intro": (
        "Jusqu'au {edate}, profitez de -{percent} % sur {category}.",
        "Pour vous remercier de votre fidélité, voici {percent} % de réduction sur "
        "votre prochaine commande.",
    ),
    "prm.code": ("Utilisez le code {code} lors du paiement.", "Votre code : {code}"),
    "prm.terms": (
        "Offre valable jusqu'au {edate} dans la limite des stocks disponibles. Non cumulable.",
        "Livraison offerte dès {threshold} d'achat.",
    ),
    "prm.cta": ("J'en profite", "Découvrir"),
    "prm.cat": ("une sélection d'articles", "tout le site", "les nouveautés"),
    "rem.appt.subj": (
        "Rappel : votre rendez-vous du {adate}",
        "Votre rendez-vous chez {brand} le {adate}",
    ),
    "rem.appt.intro": (
        "Nous vous rappelons votre rendez-vous ({service}) avec {provider}.",
        "Nous vous attendons le {adate} à {time}.",
    ),
    "rem.appt.extra": (
        "Merci d'arriver une dizaine de minutes en avance.",
        "En cas d'empêchement, merci de nous prévenir au moins 24 heures à l'avance.",
    ),
    "rem.appt.cta": ("Gérer mon rendez-vous", "Déplacer le rendez-vous"),
    "rem.stay.subj": ("Votre séjour à {city} approche", "Arrivée le {adate} : réservation {ref}"),
    "rem.stay.intro": (
        "Votre réservation à {hotel}, {city}, est confirmée. Arrivée possible à "
        "partir de {time} le {adate}.",
        "Plus que {days} jours avant votre séjour à {city} !",
    ),
    "rem.stay.extra": ("L'annulation gratuite prend fin 48 heures avant l'arrivée.",),
    "rem.stay.cta": ("Gérer ma réservation", "Voir la réservation"),
    "rem.trip.subj": (
        "L'enregistrement en ligne est ouvert pour votre vol vers {city}",
        "Votre voyage à {city} le {adate}",
    ),
    "rem.trip.intro": (
        "L'enregistrement en ligne du vol {flight} de {origin} à {city} est ouvert.",
        "Votre voyage de {origin} à {city} approche : départ le {adate} à {time}.",
    ),
    "rem.trip.extra": (
        "Votre carte d'embarquement sera disponible dans l'application après l'enregistrement.",
    ),
    "rem.trip.cta": ("M'enregistrer", "Voir mon voyage"),
    "rem.service.health": ("bilan de santé", "détartrage", "séance de kiné"),
    "rem.service.other": ("coupe", "révision de votre véhicule", "massage"),
    "evt.subj": ("Invitation : {event}", "Rejoignez-nous pour {event} le {edate}"),
    "evt.head": ("Vous êtes invité", "À vos agendas"),
    "evt.intro": (
        "Nous serions ravis de vous accueillir à {event} le {edate}.",
        "Le {edate}, nous organisons {event}. Au programme : {topic}.",
    ),
    "evt.extra": (
        "L'entrée est gratuite.",
        "Vous ne pouvez pas être présent ? Inscrivez-vous quand même pour recevoir "
        "l'enregistrement.",
    ),
    "evt.cta": ("Je m'inscris", "Réserver ma place"),
    "evt.name": (
        "la journée {brand} 2026",
        "notre webinaire « {topic_title} »",
        "notre soirée clients à {city}",
    ),
    "evt.topic": (
        "l'automatisation au quotidien",
        "les nouvelles fonctionnalités",
        "bien gérer son budget d'indépendant",
    ),
    "saa.upd.subj": ("Nouveau sur {brand} : {feature}", "Les nouveautés {brand} de {month}"),
    "saa.upd.intro": (
        "Voici les dernières améliorations de ce mois-ci.",
        "Grâce à vos retours, nous avons apporté plusieurs changements :",
    ),
    "saa.upd.extra": (
        "Toutes ces nouveautés sont disponibles dès aujourd'hui, quelle que soit votre formule.",
    ),
    "saa.upd.cta": ("Voir le journal des modifications", "Ouvrir {brand}"),
    "saa.features": (
        "mode sombre|Le mode sombre est disponible sur le web et sur ordinateur.",
        "export CSV|Exportez n'importe quel rapport en CSV en un clic.",
        "recherche plus rapide|La recherche dans vos projets est désormais bien plus rapide.",
        "clés de sécurité|Vous pouvez utiliser une clé de sécurité physique pour la "
        "connexion en deux étapes.",
    ),
    "saa.rep.subj": (
        "Votre rapport hebdomadaire {brand}",
        "{workspace} : votre utilisation en {month}",
    ),
    "saa.rep.intro": (
        "Voici le résumé de l'activité de l'espace {workspace}.",
        "Votre rapport d'utilisation mensuel est prêt.",
    ),
    "saa.rep.extra": ("Vous utilisez {pct} % du stockage inclus dans votre formule.",),
    "saa.rep.cta": ("Ouvrir le tableau de bord", "Voir le rapport complet"),
    "sup.subj.received": (
        "Nous avons bien reçu votre demande (n° {ticket})",
        "Demande {ticket} : {issue}",
    ),
    "sup.subj.replied": ("Re : {issue} [#{ticket}]", "Nouvelle réponse à votre demande {ticket}"),
    "sup.subj.solved": ("Votre demande {ticket} est résolue", "Résolu : {issue}"),
    "sup.intro.received": (
        "Merci d'avoir contacté le service client {brand}. Nous vous "
        "répondrons sous {hours} heures.",
    ),
    "sup.intro.replied": ("{agent}, de notre équipe support, vous a répondu :",),
    "sup.intro.solved": (
        "Nous avons clôturé votre demande. Si besoin, répondez simplement à cet "
        "e-mail pour la rouvrir.",
    ),
    "sup.extra": ("Vous pouvez répondre à cet e-mail pour ajouter des informations.",),
    "sup.cta": ("Voir ma demande", "Accéder à la demande"),
    "sup.issues": (
        "Remboursement de la commande {order}|Merci de votre patience. Le "
        "remboursement a été effectué aujourd'hui et apparaîtra sous 5 à 7 jours "
        "ouvrés.",
        "Question sur ma facture|La facture correspond à l'abonnement de mars. Le "
        "détail est disponible dans votre espace client, rubrique Factures.",
        "Article manquant dans mon colis|Toutes nos excuses ! L'article manquant a été "
        "réexpédié aujourd'hui, vous n'avez rien à faire.",
    ),
    "prod.fashion": (
        "Pull en laine mérinos|59|129",
        "Chemise en lin, taille M|39|79",
        "Imperméable « Brume »|89|179",
        "Chaussettes en coton (lot de 3)|12|19",
    ),
    "prod.electronics": (
        "Câble de charge USB-C, 2 m|9|19",
        "Casque Bluetooth|49|149",
        "Prise connectée (lot de 2)|24|39",
        "Clavier sans fil|29|69",
    ),
    "prod.home": (
        "Parure de lit en lin 240×220|79|139",
        "Poêle en fonte 26 cm|39|79",
        "Serviettes éponge (lot de 4)|29|49",
        "Lampe de table en laiton|59|139",
    ),
    "prod.grocery": (
        "Café en grains 1 kg|16|29",
        "Flocons d'avoine bio 1 kg|3|6",
        "Huile d'olive vierge extra 75 cl|9|19",
        "Assortiment de tisanes|6|12",
    ),
}

_ES: dict[str, tuple[str, ...]] = {
    "first": (
        "Lucía",
        "Hugo",
        "Martina",
        "Pablo",
        "Carmen",
        "Javier",
        "Sofía",
        "Diego",
        "Elena",
        "Álvaro",
        "Noelia",
        "Sergio",
        "Paula",
        "Iker",
    ),
    "last": (
        "García",
        "Fernández",
        "López",
        "Martínez",
        "Sánchez",
        "Pérez",
        "Gómez",
        "Ruiz",
        "Navarro",
        "Torres",
        "Domínguez",
        "Castro",
    ),
    "greet": ("Hola, {first}:", "Hola {first},", "Hola:", "Buenos días, {first}:"),
    "closing": ("Saludos,", "Un saludo,", "Gracias,", "Atentamente,", ""),
    "team": (
        "El equipo de {brand}",
        "Atención al cliente de {brand}",
        "{agent}, de {brand}",
        "{brand}",
    ),
    "dept": ("Atención al cliente", "Equipo"),
    "help": (
        "¿Tienes alguna pregunta? Responde a este correo y te ayudaremos.",
        "Si necesitas algo, basta con responder a este mensaje.",
    ),
    "help_noreply": (
        "Nuestro equipo de atención al cliente está a tu disposición.",
        "En nuestro centro de ayuda encontrarás respuesta a las dudas más frecuentes.",
    ),
    "foot_tx": (
        "Recibes este correo porque tienes una cuenta en {brand}.",
        "Este mensaje se ha enviado a {email}.",
        "Este es un mensaje de servicio sobre tu cuenta de {brand}.",
    ),
    "foot_mk": (
        "Recibes este correo porque te suscribiste a las novedades de {brand}.",
        "Enviado a {email}.",
        "Te suscribiste a nuestras comunicaciones en {domain}.",
    ),
    "unsub": ("Darse de baja", "Cancelar suscripción"),
    "prefs": ("Gestionar preferencias", "Preferencias de correo"),
    "privacy": ("Privacidad", "Política de privacidad"),
    "helpc": ("Ayuda", "Contacto", "Centro de ayuda", "Aviso legal"),
    "account": ("Mi cuenta", "Tu cuenta"),
    "view_online": (
        "Ver en el navegador",
        "Versión web",
        "¿No ves bien este correo? Ábrelo en el navegador",
    ),
    "rights": ("Todos los derechos reservados.", ""),
    "nav": (
        "Novedades|/novedades",
        "Más vendidos|/mas-vendidos",
        "Rebajas|/rebajas",
        "Tarjetas regalo|/tarjetas-regalo",
    ),
    "on": ("en",),
    "window": ("las {a} y las {b}",),
    "cities_signin": (
        "Madrid, España",
        "Valencia, España",
        "Sevilla, España",
        "Bilbao, España",
        "Zaragoza, España",
        "Barcelona, España",
    ),
    "cities": ("Lisboa", "Valencia", "Sevilla", "París", "Bilbao", "Roma", "Oporto"),
    "hotel": ("Hotel {x}", "Casa {x}", "Hostal {x}", "{x} Suites"),
    "free": ("Gratis", "Gratuito", "0,00 €"),
    "l.order_no": ("Número de pedido", "Pedido n.º"),
    "l.order_date": ("Fecha del pedido",),
    "l.item": ("Artículo", "Producto"),
    "l.qty": ("Cant.", "Cantidad"),
    "l.price": ("Precio", "Importe"),
    "l.subtotal": ("Subtotal",),
    "l.shipping": ("Envío", "Gastos de envío"),
    "l.tax": ("IVA",),
    "l.vat": ("IVA incluido", "de los cuales IVA"),
    "l.total": ("Total", "Total (IVA incl.)"),
    "l.ship_to": ("Dirección de envío", "Se enviará a"),
    "l.eta": ("Entrega estimada", "Entrega prevista"),
    "l.payment": ("Método de pago", "Forma de pago"),
    "l.invoice": ("Número de factura", "Recibo n.º"),
    "l.date_paid": ("Fecha de pago", "Fecha"),
    "l.amount": ("Importe", "Importe pagado"),
    "l.tracking": ("Número de seguimiento",),
    "l.carrier": ("Transportista",),
    "l.device": ("Dispositivo",),
    "l.location": ("Ubicación", "Ubicación aproximada"),
    "l.when": ("Cuándo", "Fecha"),
    "l.time": ("Hora",),
    "l.where": ("Lugar", "Dónde"),
    "l.plan": ("Plan", "Suscripción"),
    "l.renews": ("Fecha de renovación", "Próximo cobro"),
    "l.account_end": ("Cuenta terminada en", "Tarjeta terminada en"),
    "l.balance": ("Saldo", "Importe de la factura"),
    "l.min_pay": ("Pago mínimo",),
    "l.due": ("Fecha de vencimiento", "Vence el"),
    "l.period": ("Periodo",),
    "l.ref": ("Referencia de la reserva", "Localizador"),
    "l.with": ("Con", "Profesional"),
    "l.ticket": ("Solicitud", "Ticket"),
    "l.status": ("Estado",),
    "l.workspace": ("Espacio de trabajo", "Equipo"),
    "l.online": ("En línea", "Online"),
    "l.service": ("Cita", "Servicio"),
    "l.checkin": ("Llegada", "Entrada"),
    "l.checkout": ("Salida",),
    "l.flight": ("Vuelo",),
    "l.depart": ("Salida",),
    "l.m_users": ("Usuarios activos",),
    "l.m_projects": ("Proyectos",),
    "l.m_storage": ("Almacenamiento usado",),
    "l.m_requests": ("Solicitudes a la API",),
    "l.m_uptime": ("Disponibilidad",),
    "ord.subj": (
        "Confirmación de tu pedido {order}",
        "¡Gracias por tu pedido, {first}!",
        "{brand}: hemos recibido tu pedido n.º {order}",
    ),
    "ord.head": ("Gracias por tu pedido", "Pedido confirmado"),
    "ord.intro": (
        "Gracias por comprar en {brand}. Hemos recibido tu pedido y ya lo estamos preparando.",
        "Te confirmamos el pedido realizado el {odate}. Aquí tienes el resumen.",
        "Tu pago se ha procesado correctamente y estamos preparando tu pedido.",
    ),
    "ord.extra": (
        "Te enviaremos otro correo con el número de seguimiento cuando salga de nuestro almacén.",
        "Tienes 30 días para devolver los artículos sin coste.",
    ),
    "ord.cta": ("Ver pedido", "Ver detalles del pedido"),
    "shp.subj.shipped": (
        "Tu pedido {order} ya está en camino",
        "Hemos enviado tu pedido de {brand}",
    ),
    "shp.subj.out": ("Tu paquete llega hoy", "Pedido {order}: en reparto"),
    "shp.subj.delivered": ("Entregado: tu pedido {order}", "Tu paquete ha sido entregado"),
    "shp.head.shipped": ("Tu pedido está en camino", "Pedido enviado"),
    "shp.head.out": ("Llega hoy", "En reparto"),
    "shp.head.delivered": ("Entregado", "Tu paquete ha llegado"),
    "shp.intro.shipped": (
        "Hemos entregado tu paquete a {carrier}; debería llegar el {ddate}.",
        "¡Buenas noticias! Tu pedido ha salido hoy de nuestro almacén.",
    ),
    "shp.intro.out": (
        "Tu paquete está en reparto y llegará entre {window}.",
        "{carrier} entregará tu envío hoy.",
    ),
    "shp.intro.delivered": (
        "Tu paquete se entregó el {ddate} a las {time} y se dejó {spot}.",
        "Tu pedido ya está entregado. ¡Esperamos que lo disfrutes!",
    ),
    "shp.spot": ("en la puerta", "con un vecino", "en conserjería"),
    "shp.extra": (
        "El seguimiento puede tardar unas horas en actualizarse.",
        "Desde la página de seguimiento puedes elegir un punto de recogida.",
    ),
    "shp.cta": ("Seguir envío", "Ver seguimiento"),
    "rcp.subj": (
        "Tu recibo de {brand}",
        "Recibo de tu pago de {total}",
        "Factura {invoice} pagada",
    ),
    "rcp.head": ("Pago recibido", "Gracias por tu pago"),
    "rcp.intro": (
        "Hemos recibido tu pago de {total}. Abajo tienes el recibo.",
        "¡Gracias! El pago de {desc} se ha realizado correctamente.",
    ),
    "rcp.extra": (
        "El cargo aparecerá en tu extracto como {descriptor}.",
        "Puedes consultar todas tus facturas en tu cuenta.",
    ),
    "rcp.cta": ("Descargar recibo", "Ver factura"),
    "rcp.desc": ("el pedido {order}", "tu suscripción {plan}", "la factura {invoice}"),
    "rcp.proc": ("Este pago lo ha procesado {processor} en nombre de {brand}.",),
    "sub.subj.up": (
        "Tu suscripción {plan} se renueva el {rdate}",
        "Recordatorio: renovación de tu plan de {brand}",
    ),
    "sub.subj.done": ("Hemos renovado tu suscripción a {brand}", "Gracias por seguir con {brand}"),
    "sub.head.up": ("Tu plan se renueva pronto", "Recordatorio"),
    "sub.head.done": ("Suscripción renovada", "Todo listo"),
    "sub.intro.up": (
        "Tu plan {plan} se renovará automáticamente el {rdate} y cargaremos {amount} en {method}.",
        "Te recordamos que tu suscripción se renueva el {rdate}. No tienes que hacer nada.",
    ),
    "sub.intro.done": (
        "Tu suscripción {plan} se ha renovado hasta el {rdate}.",
        "Hemos renovado tu plan {plan} y cargado {amount} en {method}.",
    ),
    "sub.extra": (
        "Puedes cambiar de plan o cancelar cuando quieras desde tu cuenta.",
        "Precios con IVA incluido.",
    ),
    "sub.cta": ("Gestionar suscripción", "Ver mi cuenta"),
    "pwd.subj": ("Restablece tu contraseña", "Solicitud de cambio de contraseña en {brand}"),
    "pwd.head": ("Nueva contraseña", "Restablecer contraseña"),
    "pwd.intro": (
        "Hemos recibido una solicitud para restablecer la contraseña de tu cuenta de "
        "{brand} ({email}).",
        "Acabas de pedir una nueva contraseña. Usa el enlace de abajo para elegirla.",
    ),
    "pwd.expiry": ("El enlace caduca en {minutes} minutos y solo se puede usar una vez.",),
    "pwd.ignore": ("Si no has sido tú, ignora este correo; tu contraseña no cambiará.",),
    "pwd.cta": ("Restablecer contraseña", "Elegir nueva contraseña"),
    "pwd.code": (
        "Introduce este código en la app de {brand} para elegir una contraseña nueva:",
        "Tu código para restablecer la contraseña:",
    ),
    "sgn.subj": (
        "Nuevo inicio de sesión en tu cuenta de {brand}",
        "Alerta de seguridad: inicio de sesión en {device}",
    ),
    "sgn.head": ("Nuevo inicio de sesión", "Aviso de seguridad"),
    "sgn.intro": (
        "Hemos detectado un nuevo inicio de sesión en tu cuenta de {brand} desde {device}.",
        "Tu cuenta ({email}) se acaba de usar en un dispositivo nuevo.",
    ),
    "sgn.ok": ("Si has sido tú, no tienes que hacer nada.",),
    "sgn.notme": (
        "Si no lo reconoces, cambia tu contraseña desde la configuración de tu cuenta "
        "y cierra las demás sesiones.",
    ),
    "sgn.cta": ("Ver actividad reciente", "Ajustes de seguridad"),
    "stm.subj": ("Tu extracto de {month} ya está disponible", "Tu factura de {brand} de {month}"),
    "stm.head": ("Nuevo extracto", "Tu factura ya está lista"),
    "stm.intro": (
        "Tu extracto del periodo que termina el {sdate} ya está disponible en tu banca online.",
        "Tu factura mensual ya está lista. Accede a tu cuenta para ver el detalle.",
    ),
    "stm.extra": (
        "Por seguridad, nunca enviamos extractos como archivo adjunto.",
        "Si tienes la domiciliación activada, cobraremos el importe en la fecha de vencimiento.",
    ),
    "stm.cta": ("Ver extracto", "Ir a mis documentos"),
    "nws.subj": ("Novedades de {brand}: {title}", "Boletín de {month}: {title}"),
    "nws.head": ("Novedades de {brand}", "Boletín de {month}"),
    "nws.intro": (
        "Esto es lo que hemos preparado este mes.",
        "Te damos la bienvenida a la edición de {month} de nuestro boletín.",
    ),
    "nws.more": ("Leer más", "Seguir leyendo"),
    "nws.outro": ("¡Feliz lectura!", "Hasta el próximo número."),
    "nws.titles": (
        "Cinco ideas para empezar la primavera",
        "Entre bastidores: así trabajamos",
        "Novedades del mes",
        "Consejos para sacar partido a tu cuenta",
        "Nuestras recomendaciones de {month}",
    ),
    "nws.blurbs": (
        "Consejos prácticos que puedes aplicar hoy mismo.",
        "Te presentamos a las personas que hay detrás de {brand}.",
        "Lo más importante, en tres minutos.",
    ),
    "prm.subj": (
        "{percent} % de descuento en {category}",
        "Llegan las ofertas de primavera",
        "Hasta el {edate}: -{percent} %",
    ),
    "prm.head": ("Ofertas de primavera", "-{percent} %"),
    "prm.intro": (
        "Hasta el {edate}, {percent} % de descuento en {category}.",
        "Para darte las gracias, aquí tienes un {percent} % de descuento en tu próximo pedido.",
    ),
    "prm.code": ("Usa el código {code} al pagar.", "Tu código: {code}"),
    "prm.terms": (
        "Oferta válida hasta el {edate} o hasta agotar existencias. No acumulable.",
        "Envío gratis en pedidos desde {threshold}.",
    ),
    "prm.cta": ("Comprar ahora", "Ver ofertas"),
    "prm.cat": ("una selección de artículos", "toda la tienda", "las novedades"),
    "rem.appt.subj": ("Recordatorio: tu cita del {adate}", "Tu cita en {brand} el {adate}"),
    "rem.appt.intro": (
        "Te recordamos tu cita ({service}) con {provider}.",
        "Te esperamos el {adate} a las {time}.",
    ),
    "rem.appt.extra": (
        "Te recomendamos llegar unos diez minutos antes.",
        "Si no puedes venir, avísanos con al menos 24 horas de antelación.",
    ),
    "rem.appt.cta": ("Gestionar cita", "Cambiar la cita"),
    "rem.stay.subj": ("Tu estancia en {city} se acerca", "Llegada el {adate}: reserva {ref}"),
    "rem.stay.intro": (
        "Tu reserva en {hotel} ({city}) está confirmada. El check-in es a partir "
        "de las {time} del {adate}.",
        "¡Solo quedan {days} días para tu viaje a {city}!",
    ),
    "rem.stay.extra": ("La cancelación gratuita termina 48 horas antes de la llegada.",),
    "rem.stay.cta": ("Gestionar reserva", "Ver reserva"),
    "rem.trip.subj": (
        "Ya puedes facturar online tu vuelo a {city}",
        "Tu viaje a {city} el {adate}",
    ),
    "rem.trip.intro": (
        "Ya está abierta la facturación online del vuelo {flight} de {origin} a {city}.",
        "Tu viaje de {origin} a {city} se acerca: sales el {adate} a las {time}.",
    ),
    "rem.trip.extra": ("La tarjeta de embarque estará en la app después de facturar.",),
    "rem.trip.cta": ("Facturar ahora", "Ver viaje"),
    "rem.service.health": ("revisión", "limpieza dental", "sesión de fisioterapia"),
    "rem.service.other": ("corte de pelo", "revisión del coche", "masaje"),
    "evt.subj": ("Invitación: {event}", "Te esperamos en {event} el {edate}"),
    "evt.head": ("Estás invitado", "Reserva la fecha"),
    "evt.intro": (
        "Nos encantaría que nos acompañaras en {event} el {edate}.",
        "El {edate} organizamos {event}. Hablaremos de {topic}.",
    ),
    "evt.extra": (
        "La entrada es gratuita.",
        "¿No puedes asistir en directo? Inscríbete igualmente y te enviaremos la grabación.",
    ),
    "evt.cta": ("Inscribirme", "Reservar plaza"),
    "evt.name": (
        "el encuentro de primavera de {brand}",
        "el webinar «{topic_title}»",
        "nuestra noche de clientes en {city}",
    ),
    "evt.topic": (
        "automatizar el trabajo diario",
        "las nuevas funciones",
        "presupuestos para autónomos",
    ),
    "saa.upd.subj": ("Novedad en {brand}: {feature}", "Novedades de {brand} en {month}"),
    "saa.upd.intro": (
        "Estas son las mejoras que hemos lanzado este mes.",
        "Gracias a tus comentarios, hemos hecho varios cambios:",
    ),
    "saa.upd.extra": ("Todos los cambios ya están disponibles en todos los planes.",),
    "saa.upd.cta": ("Ver el registro de cambios", "Abrir {brand}"),
    "saa.features": (
        "modo oscuro|El modo oscuro ya está disponible en la web y en escritorio.",
        "exportación a CSV|Exporta cualquier informe a CSV con un clic.",
        "búsqueda más rápida|La búsqueda en todos tus proyectos es ahora mucho más rápida.",
        "llaves de seguridad|Ya puedes usar llaves de seguridad físicas para el "
        "inicio de sesión en dos pasos.",
    ),
    "saa.rep.subj": ("Tu informe semanal de {brand}", "{workspace}: resumen de uso de {month}"),
    "saa.rep.intro": (
        "Este es el resumen de actividad del espacio {workspace}.",
        "Tu informe mensual de uso ya está listo.",
    ),
    "saa.rep.extra": ("Estás usando el {pct} % del almacenamiento de tu plan.",),
    "saa.rep.cta": ("Abrir panel", "Ver informe completo"),
    "sup.subj.received": ("Hemos recibido tu solicitud (#{ticket})", "Solicitud {ticket}: {issue}"),
    "sup.subj.replied": ("Re: {issue} [#{ticket}]", "Nueva respuesta a tu solicitud {ticket}"),
    "sup.subj.solved": ("Tu solicitud {ticket} está resuelta", "Resuelto: {issue}"),
    "sup.intro.received": (
        "Gracias por contactar con {brand}. Te responderemos en un plazo de {hours} horas.",
    ),
    "sup.intro.replied": ("{agent}, de nuestro equipo de soporte, ha respondido:",),
    "sup.intro.solved": (
        "Hemos marcado tu solicitud como resuelta. Si necesitas algo más, "
        "responde a este correo y se volverá a abrir.",
    ),
    "sup.extra": ("Puedes responder a este correo para añadir más información.",),
    "sup.cta": ("Ver solicitud", "Ir a la solicitud"),
    "sup.issues": (
        "Reembolso del pedido {order}|Gracias por tu paciencia. Hemos emitido el "
        "reembolso hoy y lo verás en un plazo de 5 a 7 días hábiles.",
        "Duda sobre mi factura|La factura corresponde a la suscripción de marzo. "
        "Tienes el desglose en tu cuenta, en el apartado Facturas.",
        "Falta un artículo en mi pedido|¡Lo sentimos! Hemos enviado hoy el artículo "
        "que faltaba; no tienes que hacer nada más.",
    ),
    "prod.fashion": (
        "Jersey de lana merino|59|129",
        "Camisa de lino, talla M|39|79",
        "Chubasquero ligero|69|149",
        "Calcetines de algodón (pack de 3)|12|19",
    ),
    "prod.electronics": (
        "Cable de carga USB-C de 2 m|9|19",
        "Auriculares Bluetooth|49|149",
        "Enchufe inteligente (pack de 2)|24|39",
        "Teclado inalámbrico|29|69",
    ),
    "prod.home": (
        "Funda nórdica de lino 150 cm|69|119",
        "Sartén de hierro fundido 26 cm|39|79",
        "Toallas de rizo (set de 4)|29|49",
        "Lámpara de mesa de latón|59|139",
    ),
    "prod.grocery": (
        "Café en grano 1 kg|16|29",
        "Copos de avena ecológicos 1 kg|3|6",
        "Aceite de oliva virgen extra 750 ml|8|18",
        "Surtido de infusiones|6|12",
    ),
}

_NL: dict[str, tuple[str, ...]] = {
    "first": (
        "Daan",
        "Emma",
        "Sem",
        "Julia",
        "Lotte",
        "Bram",
        "Fleur",
        "Thijs",
        "Sanne",
        "Ruben",
        "Noor",
        "Youssef",
        "Anouk",
        "Jesse",
    ),
    "last": (
        "de Vries",
        "Jansen",
        "van Dijk",
        "Bakker",
        "Visser",
        "Smit",
        "Meijer",
        "de Boer",
        "Mulder",
        "Peeters",
        "Hendriks",
        "van den Berg",
    ),
    "greet": (
        "Hoi {first},",
        "Beste {first},",
        "Beste {first} {last},",
        "Hallo,",
        "Hallo {first},",
    ),
    "closing": ("Groeten,", "Met vriendelijke groet,", "Tot snel,", "Bedankt,", ""),
    "team": ("Het {brand}-team", "Klantenservice {brand}", "{agent} van {brand}", "{brand}"),
    "dept": ("Klantenservice", "Team"),
    "help": (
        "Vragen? Beantwoord deze e-mail gewoon.",
        "Hulp nodig? Stuur een reactie op dit bericht, dan helpen we je verder.",
    ),
    "help_noreply": (
        "Onze klantenservice helpt je graag verder.",
        "Antwoorden op veelgestelde vragen vind je in ons helpcentrum.",
    ),
    "foot_tx": (
        "Je ontvangt deze e-mail omdat je een account hebt bij {brand}.",
        "Dit bericht is verzonden naar {email}.",
        "Dit is een servicebericht over je {brand}-account.",
    ),
    "foot_mk": (
        "Je ontvangt deze nieuwsbrief omdat je je hebt aangemeld bij {brand}.",
        "Verzonden naar {email}.",
        "Je hebt je via {domain} aangemeld voor onze e-mails.",
    ),
    "unsub": ("Uitschrijven", "Afmelden"),
    "prefs": ("Voorkeuren beheren", "E-mailvoorkeuren"),
    "privacy": ("Privacy", "Privacybeleid"),
    "helpc": ("Klantenservice", "Help", "Contact"),
    "account": ("Mijn account", "Account"),
    "view_online": (
        "Bekijk in je browser",
        "Online bekijken",
        "Wordt deze e-mail niet goed weergegeven? Bekijk hem online",
    ),
    "rights": ("Alle rechten voorbehouden.", ""),
    "nav": ("Nieuw|/nieuw", "Bestsellers|/bestsellers", "Sale|/sale", "Cadeaubonnen|/cadeaubonnen"),
    "on": ("op",),
    "window": ("{a} en {b} uur", "{a} en {b}"),
    "cities_signin": (
        "Utrecht, Nederland",
        "Amsterdam, Nederland",
        "Gent, België",
        "Rotterdam, Nederland",
        "Zwolle, Nederland",
        "Antwerpen, België",
    ),
    "cities": ("Lissabon", "Maastricht", "Berlijn", "Kopenhagen", "Groningen", "Rome", "Porto"),
    "hotel": ("Hotel {x}", "{x} Suites", "Landgoed {x}", "Stadshotel {x}"),
    "free": ("Gratis", "€ 0,00"),
    "l.order_no": ("Bestelnummer",),
    "l.order_date": ("Besteldatum", "Besteld op"),
    "l.item": ("Artikel", "Product"),
    "l.qty": ("Aantal",),
    "l.price": ("Prijs", "Bedrag"),
    "l.subtotal": ("Subtotaal",),
    "l.shipping": ("Verzendkosten", "Bezorging"),
    "l.tax": ("Btw",),
    "l.vat": ("inclusief btw", "waarvan btw"),
    "l.total": ("Totaal", "Totaalbedrag"),
    "l.ship_to": ("Bezorgadres",),
    "l.eta": ("Verwachte bezorging", "Bezorgdatum"),
    "l.payment": ("Betaalmethode", "Betaald met"),
    "l.invoice": ("Factuurnummer",),
    "l.date_paid": ("Betaaldatum", "Datum"),
    "l.amount": ("Bedrag", "Betaald bedrag"),
    "l.tracking": ("Track & trace-code", "Zendingnummer"),
    "l.carrier": ("Vervoerder",),
    "l.device": ("Apparaat",),
    "l.location": ("Locatie",),
    "l.when": ("Wanneer", "Datum"),
    "l.time": ("Tijd", "Aanvang"),
    "l.where": ("Waar", "Locatie"),
    "l.plan": ("Abonnement",),
    "l.renews": ("Verlengingsdatum", "Volgende betaling"),
    "l.account_end": ("Rekening eindigend op", "Kaart eindigend op"),
    "l.balance": ("Saldo", "Nieuw saldo", "Factuurbedrag"),
    "l.min_pay": ("Minimumbedrag",),
    "l.due": ("Vervaldatum", "Te betalen voor"),
    "l.period": ("Periode",),
    "l.ref": ("Boekingsnummer", "Referentie"),
    "l.with": ("Met", "Behandelaar"),
    "l.ticket": ("Verzoek", "Ticketnummer"),
    "l.status": ("Status",),
    "l.workspace": ("Werkruimte", "Team"),
    "l.online": ("Online",),
    "l.service": ("Afspraak", "Behandeling"),
    "l.checkin": ("Inchecken", "Aankomst"),
    "l.checkout": ("Uitchecken", "Vertrek"),
    "l.flight": ("Vlucht", "Vluchtnummer"),
    "l.depart": ("Vertrek",),
    "l.m_users": ("Actieve gebruikers",),
    "l.m_projects": ("Projecten",),
    "l.m_storage": ("Gebruikte opslag",),
    "l.m_requests": ("API-verzoeken",),
    "l.m_uptime": ("Beschikbaarheid",),
    "ord.subj": (
        "Bevestiging van je bestelling {order}",
        "Bedankt voor je bestelling, {first}!",
        "{brand}: bestelling {order} ontvangen",
    ),
    "ord.head": ("Bedankt voor je bestelling", "Bestelling bevestigd"),
    "ord.intro": (
        "Bedankt voor je bestelling bij {brand}. We hebben hem ontvangen en gaan hem nu inpakken.",
        "Hierbij bevestigen we je bestelling van {odate}. Hieronder vind je een overzicht.",
        "Je betaling is gelukt en we zijn met je bestelling aan de slag.",
    ),
    "ord.extra": (
        "Zodra je pakket onderweg is, krijg je een e-mail met de track & trace-code.",
        "Retourneren is 30 dagen gratis.",
    ),
    "ord.cta": ("Bekijk bestelling", "Naar mijn bestelling"),
    "shp.subj.shipped": ("Je bestelling {order} is verzonden", "Je {brand}-pakket is onderweg"),
    "shp.subj.out": ("Je pakket komt vandaag", "Bestelling {order} wordt vandaag bezorgd"),
    "shp.subj.delivered": ("Bezorgd: je bestelling {order}", "Je pakket is bezorgd"),
    "shp.head.shipped": ("Je pakket is onderweg", "Verzonden"),
    "shp.head.out": ("Vandaag bezorgd", "Onderweg naar jou"),
    "shp.head.delivered": ("Bezorgd", "Je pakket is er"),
    "shp.intro.shipped": (
        "Je pakket is overgedragen aan {carrier} en wordt naar verwachting op {ddate} bezorgd.",
        "Goed nieuws: je bestelling heeft vandaag ons magazijn verlaten.",
    ),
    "shp.intro.out": (
        "De bezorger heeft je pakket bij zich en komt tussen {window}.",
        "{carrier} bezorgt je pakket vandaag.",
    ),
    "shp.intro.delivered": (
        "Je pakket is op {ddate} om {time} bezorgd en {spot}.",
        "Je bestelling is bezorgd. Veel plezier ermee!",
    ),
    "shp.spot": (
        "bij de voordeur neergezet",
        "bij de buren afgegeven",
        "in je pakketbrievenbus gelegd",
    ),
    "shp.extra": (
        "Het kan een paar uur duren voordat de track & trace is bijgewerkt.",
        "Op de volgpagina kun je een afhaalpunt kiezen.",
    ),
    "shp.cta": ("Volg je pakket", "Bekijk de status"),
    "rcp.subj": (
        "Je betaalbewijs van {brand}",
        "Ontvangstbewijs voor je betaling van {total}",
        "Factuur {invoice} betaald",
    ),
    "rcp.head": ("Betaling ontvangen", "Bedankt voor je betaling"),
    "rcp.intro": (
        "We hebben je betaling van {total} ontvangen. Het betaalbewijs staat hieronder.",
        "Bedankt! Je betaling voor {desc} is gelukt.",
    ),
    "rcp.extra": (
        "De afschrijving staat op je afschrift als {descriptor}.",
        "Al je facturen vind je in je account.",
    ),
    "rcp.cta": ("Download betaalbewijs", "Bekijk factuur"),
    "rcp.desc": ("bestelling {order}", "je abonnement {plan}", "factuur {invoice}"),
    "rcp.proc": ("Deze betaling is namens {brand} verwerkt door {processor}.",),
    "sub.subj.up": (
        "Je abonnement {plan} wordt verlengd op {rdate}",
        "Herinnering: verlenging van je {brand}-abonnement",
    ),
    "sub.subj.done": ("Je {brand}-abonnement is verlengd", "Bedankt dat je bij {brand} blijft"),
    "sub.head.up": ("Je abonnement wordt binnenkort verlengd", "Herinnering"),
    "sub.head.done": ("Abonnement verlengd", "Alles geregeld"),
    "sub.intro.up": (
        "Je {plan}-abonnement wordt op {rdate} automatisch verlengd. We schrijven "
        "dan {amount} af via {method}.",
        "Even een herinnering: je abonnement wordt verlengd op {rdate}. Je hoeft niets te doen.",
    ),
    "sub.intro.done": (
        "Je abonnement {plan} is verlengd tot {rdate}.",
        "We hebben je {plan}-abonnement verlengd en {amount} afgeschreven via {method}.",
    ),
    "sub.extra": (
        "Je kunt je abonnement altijd wijzigen of opzeggen in je account.",
        "Prijzen zijn inclusief btw.",
    ),
    "sub.cta": ("Abonnement beheren", "Naar mijn account"),
    "pwd.subj": ("Stel je wachtwoord opnieuw in", "Je aanvraag voor een nieuw {brand}-wachtwoord"),
    "pwd.head": ("Nieuw wachtwoord", "Wachtwoord opnieuw instellen"),
    "pwd.intro": (
        "We hebben een verzoek ontvangen om het wachtwoord van je {brand}-account "
        "({email}) opnieuw in te stellen.",
        "Je hebt zojuist een nieuw wachtwoord aangevraagd. Via de link hieronder kies je er een.",
    ),
    "pwd.expiry": ("De link is {minutes} minuten geldig en werkt maar één keer.",),
    "pwd.ignore": (
        "Heb je dit niet aangevraagd? Dan kun je deze e-mail negeren; je wachtwoord "
        "blijft hetzelfde.",
    ),
    "pwd.cta": ("Wachtwoord opnieuw instellen", "Nieuw wachtwoord kiezen"),
    "pwd.code": (
        "Vul deze code in de {brand}-app in om een nieuw wachtwoord te kiezen:",
        "Je code om je wachtwoord opnieuw in te stellen:",
    ),
    "sgn.subj": (
        "Nieuwe aanmelding bij je {brand}-account",
        "Beveiligingsmelding: aanmelding op {device}",
    ),
    "sgn.head": ("Nieuwe aanmelding", "Beveiligingsmelding"),
    "sgn.intro": (
        "We zagen een nieuwe aanmelding bij je {brand}-account op {device}.",
        "Je account ({email}) is zojuist gebruikt op een nieuw apparaat.",
    ),
    "sgn.ok": ("Was jij dit? Dan hoef je niets te doen.",),
    "sgn.notme": (
        "Herken je dit niet, wijzig dan je wachtwoord via je accountinstellingen en "
        "meld andere sessies af.",
    ),
    "sgn.cta": ("Bekijk recente activiteit", "Beveiligingsinstellingen"),
    "stm.subj": ("Je afschrift van {month} staat klaar", "Je {brand}-factuur van {month}"),
    "stm.head": ("Nieuw afschrift", "Je factuur staat klaar"),
    "stm.intro": (
        "Je afschrift over de periode tot en met {sdate} staat nu in internetbankieren.",
        "Je maandfactuur staat klaar. Log in om alle details te bekijken.",
    ),
    "stm.extra": (
        "Voor je veiligheid sturen we afschriften nooit als bijlage.",
        "Heb je automatische incasso? Dan schrijven we het bedrag op de vervaldatum af.",
    ),
    "stm.cta": ("Bekijk afschrift", "Naar mijn documenten"),
    "nws.subj": ("Nieuwsbrief {brand}: {title}", "Nieuws van {brand} in {month}"),
    "nws.head": ("Nieuws van {brand}", "Nieuwsbrief {month}"),
    "nws.intro": ("Dit is er nieuw bij ons.", "Welkom bij de {month}-editie van onze nieuwsbrief."),
    "nws.more": ("Lees meer", "Verder lezen"),
    "nws.outro": ("Veel leesplezier!", "Tot de volgende editie."),
    "nws.titles": (
        "Vijf tips voor een frisse lente",
        "Een kijkje achter de schermen",
        "Nieuw in ons assortiment",
        "Zo haal je meer uit je account",
        "Onze favorieten van {month}",
    ),
    "nws.blurbs": (
        "Praktische tips die je meteen kunt gebruiken.",
        "Maak kennis met de mensen achter {brand}.",
        "Het belangrijkste in drie minuten.",
    ),
    "prm.subj": (
        "{percent}% korting op {category}",
        "De voorjaarsaanbiedingen zijn begonnen",
        "Alleen tot {edate}: {percent}% korting",
    ),
    "prm.head": ("Voorjaarsactie", "{percent}% korting"),
    "prm.intro": (
        "Tot en met {edate} krijg je {percent}% korting op {category}.",
        "Als bedankje voor je inschrijving krijg je {percent}% korting op je volgende bestelling.",
    ),
    "prm.code": ("Gebruik code {code} bij het afrekenen.", "Jouw code: {code}"),
    "prm.terms": (
        "Geldig tot en met {edate}, zolang de voorraad strekt. Niet te combineren met "
        "andere acties.",
        "Gratis verzending vanaf {threshold}.",
    ),
    "prm.cta": ("Shop nu", "Bekijk de aanbiedingen"),
    "prm.cat": ("geselecteerde artikelen", "het hele assortiment", "nieuwe producten"),
    "rem.appt.subj": ("Herinnering: je afspraak op {adate}", "Je afspraak bij {brand} op {adate}"),
    "rem.appt.intro": (
        "We herinneren je graag aan je afspraak ({service}) met {provider}.",
        "We zien je graag op {adate} om {time}.",
    ),
    "rem.appt.extra": (
        "Kom je ongeveer tien minuten van tevoren?",
        "Kun je niet? Laat het ons dan minstens 24 uur van tevoren weten.",
    ),
    "rem.appt.cta": ("Afspraak beheren", "Afspraak verzetten"),
    "rem.stay.subj": ("Je verblijf in {city} komt eraan", "Inchecken op {adate}: boeking {ref}"),
    "rem.stay.intro": (
        "Je reservering bij {hotel} in {city} is bevestigd. Inchecken kan vanaf {time} op {adate}.",
        "Nog maar {days} dagen tot je reis naar {city}!",
    ),
    "rem.stay.extra": ("Gratis annuleren kan tot 48 uur voor aankomst.",),
    "rem.stay.cta": ("Boeking beheren", "Bekijk boeking"),
    "rem.trip.subj": (
        "Online inchecken voor je vlucht naar {city} is geopend",
        "Je reis naar {city} op {adate}",
    ),
    "rem.trip.intro": (
        "Online inchecken voor vlucht {flight} van {origin} naar {city} is nu mogelijk.",
        "Je reis van {origin} naar {city} komt eraan: vertrek op {adate} om {time}.",
    ),
    "rem.trip.extra": ("Na het inchecken staat je instapkaart in de app.",),
    "rem.trip.cta": ("Nu inchecken", "Bekijk je reis"),
    "rem.service.health": ("controle", "gebitsreiniging", "fysiotherapie"),
    "rem.service.other": ("knipbeurt", "onderhoudsbeurt", "massage"),
    "evt.subj": ("Uitnodiging: {event}", "Doe mee met {event} op {edate}"),
    "evt.head": ("Je bent uitgenodigd", "Zet het in je agenda"),
    "evt.intro": (
        "We nodigen je graag uit voor {event} op {edate}.",
        "Op {edate} organiseren we {event}. Het onderwerp: {topic}.",
    ),
    "evt.extra": (
        "Deelname is gratis.",
        "Kun je er niet live bij zijn? Meld je toch aan, dan sturen we je de opname.",
    ),
    "evt.cta": ("Aanmelden", "Plek reserveren"),
    "evt.name": (
        "de {brand} Lentedag",
        "het webinar '{topic_title}'",
        "onze klantenavond in {city}",
    ),
    "evt.topic": ("slimmer automatiseren", "de nieuwe functies", "budgetteren voor zzp'ers"),
    "saa.upd.subj": ("Nieuw in {brand}: {feature}", "Productnieuws van {brand} - {month}"),
    "saa.upd.intro": (
        "Dit zijn de verbeteringen van deze maand.",
        "Dankzij jullie feedback hebben we een aantal dingen veranderd:",
    ),
    "saa.upd.extra": ("Alle wijzigingen zijn vanaf vandaag beschikbaar in elk abonnement.",),
    "saa.upd.cta": ("Bekijk de changelog", "Open {brand}"),
    "saa.features": (
        "donkere modus|De donkere modus is nu beschikbaar op web en desktop.",
        "CSV-export|Exporteer elk rapport met één klik als CSV.",
        "sneller zoeken|Zoeken in al je projecten gaat nu een stuk sneller.",
        "beveiligingssleutels|Je kunt nu een fysieke beveiligingssleutel gebruiken "
        "voor inloggen in twee stappen.",
    ),
    "saa.rep.subj": ("Je weekoverzicht van {brand}", "{workspace}: gebruik in {month}"),
    "saa.rep.intro": (
        "Hier is een overzicht van de activiteit in werkruimte {workspace}.",
        "Je maandelijkse gebruiksrapport staat klaar.",
    ),
    "saa.rep.extra": ("Je gebruikt {pct}% van de opslag in je abonnement.",),
    "saa.rep.cta": ("Open dashboard", "Bekijk volledig rapport"),
    "sup.subj.received": ("We hebben je vraag ontvangen (#{ticket})", "Verzoek {ticket}: {issue}"),
    "sup.subj.replied": ("Re: {issue} [#{ticket}]", "Nieuw antwoord op je verzoek {ticket}"),
    "sup.subj.solved": ("Je verzoek {ticket} is opgelost", "Opgelost: {issue}"),
    "sup.intro.received": ("Bedankt voor je bericht aan {brand}. We reageren binnen {hours} uur.",),
    "sup.intro.replied": ("{agent} van ons supportteam heeft gereageerd:",),
    "sup.intro.solved": (
        "We hebben je verzoek als opgelost gemarkeerd. Is er nog iets? "
        "Beantwoord deze e-mail en we pakken het weer op.",
    ),
    "sup.extra": ("Je kunt deze e-mail beantwoorden om informatie toe te voegen.",),
    "sup.cta": ("Bekijk verzoek", "Naar je verzoek"),
    "sup.issues": (
        "Terugbetaling bestelling {order}|Bedankt voor je geduld. We hebben het "
        "bedrag vandaag teruggestort; binnen 5 tot 7 werkdagen staat het op je "
        "rekening.",
        "Vraag over mijn factuur|De factuur is voor je abonnement over maart. De "
        "specificatie vind je in je account onder Facturen.",
        "Artikel ontbreekt in mijn bestelling|Wat vervelend! We hebben het "
        "ontbrekende artikel vandaag nagestuurd; je hoeft verder niets te doen.",
    ),
    "prod.fashion": (
        "Trui van merinowol|59|129",
        "Linnen overhemd, maat M|39|79",
        "Lichte regenjas|69|149",
        "Katoenen sokken (3 paar)|12|19",
    ),
    "prod.electronics": (
        "USB-C-oplaadkabel, 2 m|9|19",
        "Bluetooth-koptelefoon|49|149",
        "Slimme stekker (2 stuks)|24|39",
        "Draadloos toetsenbord|29|69",
    ),
    "prod.home": (
        "Linnen dekbedovertrek 140×220|69|119",
        "Gietijzeren koekenpan 26 cm|39|79",
        "Badstof handdoeken (set van 4)|29|49",
        "Messing tafellamp|59|139",
    ),
    "prod.grocery": (
        "Koffiebonen 1 kg|16|29",
        "Biologische havermout 1 kg|3|6",
        "Extra vierge olijfolie 750 ml|9|19",
        "Kruidenthee-assortiment|6|12",
    ),
}

_IT: dict[str, tuple[str, ...]] = {
    "first": (
        "Giulia",
        "Marco",
        "Francesca",
        "Luca",
        "Chiara",
        "Matteo",
        "Sara",
        "Alessandro",
        "Elena",
        "Davide",
        "Martina",
        "Federico",
        "Aurora",
        "Simone",
    ),
    "last": (
        "Rossi",
        "Bianchi",
        "Romano",
        "Colombo",
        "Ricci",
        "Marino",
        "Greco",
        "Bruno",
        "Gallo",
        "Conti",
        "Esposito",
        "Ferrari",
    ),
    "greet": ("Ciao {first},", "Gentile {first} {last},", "Buongiorno {first},", "Salve,", "Ciao,"),
    "closing": ("A presto,", "Cordiali saluti,", "Grazie,", "Un saluto,", ""),
    "team": ("Il team di {brand}", "Servizio clienti {brand}", "{agent} di {brand}", "{brand}"),
    "dept": ("Servizio clienti", "Team"),
    "help": (
        "Domande? Rispondi semplicemente a questa email.",
        "Per qualsiasi dubbio, basta rispondere a questo messaggio.",
    ),
    "help_noreply": (
        "Il nostro servizio clienti è a tua disposizione.",
        "Trovi le risposte alle domande più frequenti nel nostro centro assistenza.",
    ),
    "foot_tx": (
        "Ricevi questa email perché hai un account {brand}.",
        "Questo messaggio è stato inviato a {email}.",
        "Questa è una comunicazione di servizio relativa al tuo account {brand}.",
    ),
    "foot_mk": (
        "Ricevi questa newsletter perché ti sei iscritto su {domain}.",
        "Inviata a {email}.",
        "Sei iscritto agli aggiornamenti di {brand}.",
    ),
    "unsub": ("Annulla iscrizione", "Disiscriviti"),
    "prefs": ("Gestisci preferenze", "Preferenze email"),
    "privacy": ("Privacy", "Informativa sulla privacy"),
    "helpc": ("Assistenza", "Aiuto", "Contattaci"),
    "account": ("Il mio account", "Account"),
    "view_online": (
        "Visualizza nel browser",
        "Versione online",
        "Non visualizzi correttamente questa email? Aprila nel browser",
    ),
    "rights": ("Tutti i diritti riservati.", ""),
    "nav": (
        "Novità|/novita",
        "Più venduti|/piu-venduti",
        "Saldi|/saldi",
        "Carte regalo|/carte-regalo",
    ),
    "on": ("su",),
    "window": ("le {a} e le {b}",),
    "cities_signin": (
        "Milano, Italia",
        "Torino, Italia",
        "Bologna, Italia",
        "Roma, Italia",
        "Bari, Italia",
        "Lugano, Svizzera",
    ),
    "cities": ("Lisbona", "Napoli", "Firenze", "Parigi", "Verona", "Barcellona", "Palermo"),
    "hotel": ("Hotel {x}", "Albergo {x}", "Residenza {x}", "Locanda {x}"),
    "free": ("Gratuita", "Gratis", "0,00 €"),
    "l.order_no": ("Numero d'ordine", "Ordine n."),
    "l.order_date": ("Data dell'ordine",),
    "l.item": ("Articolo", "Prodotto"),
    "l.qty": ("Qtà", "Quantità"),
    "l.price": ("Prezzo", "Importo"),
    "l.subtotal": ("Subtotale",),
    "l.shipping": ("Spedizione", "Spese di spedizione"),
    "l.tax": ("IVA",),
    "l.vat": ("di cui IVA", "IVA inclusa"),
    "l.total": ("Totale", "Totale (IVA inclusa)"),
    "l.ship_to": ("Indirizzo di consegna", "Consegna a"),
    "l.eta": ("Consegna prevista", "Consegna stimata"),
    "l.payment": ("Metodo di pagamento", "Pagato con"),
    "l.invoice": ("Numero fattura", "Ricevuta n."),
    "l.date_paid": ("Data di pagamento", "Data"),
    "l.amount": ("Importo", "Importo pagato"),
    "l.tracking": ("Numero di tracking", "Codice di spedizione"),
    "l.carrier": ("Corriere",),
    "l.device": ("Dispositivo",),
    "l.location": ("Posizione", "Luogo"),
    "l.when": ("Quando", "Data"),
    "l.time": ("Ora", "Orario"),
    "l.where": ("Dove", "Luogo"),
    "l.plan": ("Piano", "Abbonamento"),
    "l.renews": ("Data di rinnovo", "Prossimo addebito"),
    "l.account_end": ("Conto che termina con", "Carta che termina con"),
    "l.balance": ("Saldo", "Saldo finale", "Importo della fattura"),
    "l.min_pay": ("Pagamento minimo",),
    "l.due": ("Scadenza", "Data di scadenza"),
    "l.period": ("Periodo",),
    "l.ref": ("Codice di prenotazione", "Riferimento"),
    "l.with": ("Con", "Professionista"),
    "l.ticket": ("Richiesta", "Ticket"),
    "l.status": ("Stato",),
    "l.workspace": ("Spazio di lavoro", "Team"),
    "l.online": ("Online",),
    "l.service": ("Appuntamento", "Servizio"),
    "l.checkin": ("Check-in", "Arrivo"),
    "l.checkout": ("Check-out", "Partenza"),
    "l.flight": ("Volo",),
    "l.depart": ("Partenza",),
    "l.m_users": ("Utenti attivi",),
    "l.m_projects": ("Progetti",),
    "l.m_storage": ("Spazio utilizzato",),
    "l.m_requests": ("Richieste API",),
    "l.m_uptime": ("Disponibilità",),
    "ord.subj": (
        "Conferma del tuo ordine {order}",
        "Grazie per il tuo ordine, {first}!",
        "{brand}: abbiamo ricevuto l'ordine n. {order}",
    ),
    "ord.head": ("Grazie per il tuo ordine", "Ordine confermato"),
    "ord.intro": (
        "Grazie per aver acquistato su {brand}. Abbiamo ricevuto il tuo ordine e lo "
        "stiamo preparando.",
        "Ti confermiamo l'ordine effettuato il {odate}. Trovi il riepilogo qui sotto.",
        "Il pagamento è andato a buon fine e stiamo preparando il tuo ordine.",
    ),
    "ord.extra": (
        "Riceverai un'altra email con il codice di tracking appena il pacco sarà spedito.",
        "Puoi restituire gli articoli gratuitamente entro 30 giorni.",
    ),
    "ord.cta": ("Visualizza ordine", "Dettagli dell'ordine"),
    "shp.subj.shipped": (
        "Il tuo ordine {order} è stato spedito",
        "Il tuo pacco {brand} è in viaggio",
    ),
    "shp.subj.out": ("Il tuo pacco arriva oggi", "Ordine {order} in consegna"),
    "shp.subj.delivered": ("Consegnato: il tuo ordine {order}", "Il tuo pacco è stato consegnato"),
    "shp.head.shipped": ("Il tuo pacco è in viaggio", "Ordine spedito"),
    "shp.head.out": ("In consegna oggi", "Arriva oggi"),
    "shp.head.delivered": ("Consegnato", "Il pacco è arrivato"),
    "shp.intro.shipped": (
        "Abbiamo affidato il pacco a {carrier}: dovrebbe arrivare il {ddate}.",
        "Buone notizie: il tuo ordine ha lasciato oggi il nostro magazzino.",
    ),
    "shp.intro.out": (
        "Il corriere ha il tuo pacco e passerà tra {window}.",
        "{carrier} consegnerà la spedizione oggi.",
    ),
    "shp.intro.delivered": (
        "Il pacco è stato consegnato il {ddate} alle {time} e {spot}.",
        "Il tuo ordine è stato consegnato. Speriamo ti piaccia!",
    ),
    "shp.spot": ("lasciato davanti alla porta", "affidato a un vicino", "depositato nel locker"),
    "shp.extra": (
        "Il tracking può richiedere qualche ora per aggiornarsi.",
        "Dalla pagina di tracciamento puoi scegliere un punto di ritiro.",
    ),
    "shp.cta": ("Traccia il pacco", "Segui la spedizione"),
    "rcp.subj": (
        "La tua ricevuta {brand}",
        "Ricevuta del pagamento di {total}",
        "Fattura {invoice} pagata",
    ),
    "rcp.head": ("Pagamento ricevuto", "Grazie per il pagamento"),
    "rcp.intro": (
        "Abbiamo ricevuto il tuo pagamento di {total}. Trovi la ricevuta qui sotto.",
        "Grazie! Il pagamento per {desc} è andato a buon fine.",
    ),
    "rcp.extra": (
        "L'addebito comparirà nell'estratto conto come {descriptor}.",
        "Trovi tutte le fatture nel tuo account.",
    ),
    "rcp.cta": ("Scarica la ricevuta", "Visualizza fattura"),
    "rcp.desc": ("l'ordine {order}", "l'abbonamento {plan}", "la fattura {invoice}"),
    "rcp.proc": ("Il pagamento è stato elaborato da {processor} per conto di {brand}.",),
    "sub.subj.up": (
        "Il tuo abbonamento {plan} si rinnova il {rdate}",
        "Promemoria: rinnovo del tuo piano {brand}",
    ),
    "sub.subj.done": (
        "Il tuo abbonamento {brand} è stato rinnovato",
        "Grazie per essere ancora con {brand}",
    ),
    "sub.head.up": ("Rinnovo in arrivo", "Promemoria"),
    "sub.head.done": ("Abbonamento rinnovato", "Tutto a posto"),
    "sub.intro.up": (
        "Il piano {plan} si rinnoverà automaticamente il {rdate} e addebiteremo "
        "{amount} su {method}.",
        "Ti ricordiamo che l'abbonamento si rinnova il {rdate}. Non devi fare nulla.",
    ),
    "sub.intro.done": (
        "Il tuo abbonamento {plan} è stato rinnovato fino al {rdate}.",
        "Abbiamo rinnovato il piano {plan} e addebitato {amount} su {method}.",
    ),
    "sub.extra": (
        "Puoi cambiare piano o disdire in qualsiasi momento dal tuo account.",
        "Prezzi IVA inclusa.",
    ),
    "sub.cta": ("Gestisci abbonamento", "Vai al tuo account"),
    "pwd.subj": ("Reimposta la password", "La tua richiesta di nuova password {brand}"),
    "pwd.head": ("Nuova password", "Reimposta la password"),
    "pwd.intro": (
        "Abbiamo ricevuto una richiesta di reimpostazione della password per il tuo "
        "account {brand} ({email}).",
        "Hai appena chiesto una nuova password. Usa il link qui sotto per sceglierla.",
    ),
    "pwd.expiry": ("Il link è valido per {minutes} minuti e può essere usato una sola volta.",),
    "pwd.ignore": ("Se non sei stato tu, ignora questa email: la password resterà invariata.",),
    "pwd.cta": ("Reimposta password", "Scegli una nuova password"),
    "pwd.code": (
        "Inserisci questo codice nell'app {brand} per scegliere una nuova password:",
        "Il tuo codice per reimpostare la password:",
    ),
    "sgn.subj": (
        "Nuovo accesso al tuo account {brand}",
        "Avviso di sicurezza: accesso da {device}",
    ),
    "sgn.head": ("Nuovo accesso", "Avviso di sicurezza"),
    "sgn.intro": (
        "Abbiamo rilevato un nuovo accesso al tuo account {brand} da {device}.",
        "Il tuo account ({email}) è appena stato usato su un nuovo dispositivo.",
    ),
    "sgn.ok": ("Se sei stato tu, non devi fare nulla.",),
    "sgn.notme": (
        "Se non riconosci l'accesso, cambia la password dalle impostazioni "
        "dell'account e disconnetti le altre sessioni.",
    ),
    "sgn.cta": ("Vedi attività recente", "Impostazioni di sicurezza"),
    "stm.subj": (
        "Il tuo estratto conto di {month} è disponibile",
        "La tua bolletta {brand} di {month}",
    ),
    "stm.head": ("Nuovo estratto conto", "La tua bolletta è pronta"),
    "stm.intro": (
        "L'estratto conto del periodo fino al {sdate} è disponibile nell'home banking.",
        "La fattura mensile è pronta. Accedi per vedere tutti i dettagli.",
    ),
    "stm.extra": (
        "Per la tua sicurezza non inviamo mai estratti conto come allegati.",
        "Con l'addebito diretto, l'importo verrà prelevato alla scadenza.",
    ),
    "stm.cta": ("Vedi estratto conto", "Vai ai documenti"),
    "nws.subj": ("Newsletter {brand}: {title}", "Le novità di {month} da {brand}"),
    "nws.head": ("Le novità di {brand}", "Newsletter di {month}"),
    "nws.intro": (
        "Ecco le ultime novità da {brand}.",
        "Benvenuto nell'edizione di {month} della nostra newsletter.",
    ),
    "nws.more": ("Leggi di più", "Continua a leggere"),
    "nws.outro": ("Buona lettura!", "Alla prossima edizione."),
    "nws.titles": (
        "Cinque idee per iniziare la primavera",
        "Dietro le quinte del nostro laboratorio",
        "Le novità del mese",
        "Consigli per usare al meglio il tuo account",
        "I nostri preferiti di {month}",
    ),
    "nws.blurbs": (
        "Consigli pratici da mettere in pratica subito.",
        "Ti presentiamo le persone dietro {brand}.",
        "L'essenziale in tre minuti di lettura.",
    ),
    "prm.subj": (
        "{percent}% di sconto su {category}",
        "Sono arrivate le offerte di primavera",
        "Fino al {edate}: -{percent}%",
    ),
    "prm.head": ("Offerte di primavera", "-{percent}%"),
    "prm.intro": (
        "Fino al {edate}, {percent}% di sconto su {category}.",
        "Per ringraziarti, ecco il {percent}% di sconto sul tuo prossimo ordine.",
    ),
    "prm.code": ("Usa il codice {code} al momento del pagamento.", "Il tuo codice: {code}"),
    "prm.terms": (
        "Offerta valida fino al {edate} salvo esaurimento scorte. Non cumulabile.",
        "Spedizione gratuita per ordini da {threshold}.",
    ),
    "prm.cta": ("Acquista ora", "Scopri le offerte"),
    "prm.cat": ("una selezione di articoli", "tutto il catalogo", "le novità"),
    "rem.appt.subj": (
        "Promemoria: appuntamento del {adate}",
        "Il tuo appuntamento da {brand} il {adate}",
    ),
    "rem.appt.intro": (
        "Ti ricordiamo l'appuntamento ({service}) con {provider}.",
        "Ti aspettiamo il {adate} alle {time}.",
    ),
    "rem.appt.extra": (
        "Ti consigliamo di arrivare una decina di minuti prima.",
        "Se non puoi venire, avvisaci almeno 24 ore prima.",
    ),
    "rem.appt.cta": ("Gestisci appuntamento", "Sposta appuntamento"),
    "rem.stay.subj": (
        "Il tuo soggiorno a {city} si avvicina",
        "Check-in il {adate}: prenotazione {ref}",
    ),
    "rem.stay.intro": (
        "La prenotazione presso {hotel} a {city} è confermata. Il check-in è "
        "dalle {time} del {adate}.",
        "Mancano solo {days} giorni al tuo viaggio a {city}!",
    ),
    "rem.stay.extra": ("La cancellazione gratuita termina 48 ore prima dell'arrivo.",),
    "rem.stay.cta": ("Gestisci prenotazione", "Vedi prenotazione"),
    "rem.trip.subj": (
        "Il check-in online per il volo per {city} è aperto",
        "Il tuo viaggio a {city} il {adate}",
    ),
    "rem.trip.intro": (
        "Il check-in online del volo {flight} da {origin} a {city} è aperto.",
        "Il viaggio da {origin} a {city} si avvicina: partenza il {adate} alle {time}.",
    ),
    "rem.trip.extra": ("La carta d'imbarco sarà disponibile nell'app dopo il check-in.",),
    "rem.trip.cta": ("Fai il check-in", "Vedi il viaggio"),
    "rem.service.health": ("visita di controllo", "pulizia dei denti", "seduta di fisioterapia"),
    "rem.service.other": ("taglio", "tagliando", "massaggio"),
    "evt.subj": ("Invito: {event}", "Partecipa anche tu: {event}, il {edate}"),
    "evt.head": ("Sei invitato", "Segna la data"),
    "evt.intro": (
        "Ti invitiamo a «{event}», il {edate}.",
        "Il {edate} organizziamo «{event}». Parleremo di {topic}.",
    ),
    "evt.extra": (
        "La partecipazione è gratuita.",
        "Non puoi partecipare in diretta? Iscriviti comunque e ti invieremo la registrazione.",
    ),
    "evt.cta": ("Iscriviti", "Prenota il tuo posto"),
    "evt.name": (
        "Incontro di primavera {brand}",
        "Webinar: {topic_title}",
        "Serata clienti a {city}",
    ),
    "evt.topic": (
        "automatizzare il lavoro quotidiano",
        "le nuove funzioni",
        "il budget per i liberi professionisti",
    ),
    "saa.upd.subj": ("Novità in {brand}: {feature}", "Aggiornamenti di {brand} di {month}"),
    "saa.upd.intro": (
        "Ecco i miglioramenti rilasciati questo mese.",
        "Grazie ai vostri suggerimenti, abbiamo introdotto diverse novità:",
    ),
    "saa.upd.extra": ("Tutte le novità sono disponibili da oggi per ogni piano.",),
    "saa.upd.cta": ("Vedi il changelog", "Apri {brand}"),
    "saa.features": (
        "modalità scura|La modalità scura è disponibile sul web e su desktop.",
        "esportazione CSV|Esporta qualsiasi report in CSV con un clic.",
        "ricerca più veloce|La ricerca tra i progetti è ora molto più rapida.",
        "chiavi di sicurezza|Ora puoi usare una chiave di sicurezza fisica per "
        "l'accesso in due passaggi.",
    ),
    "saa.rep.subj": ("Il tuo report settimanale di {brand}", "{workspace}: utilizzo di {month}"),
    "saa.rep.intro": (
        "Ecco il riepilogo delle attività nello spazio {workspace}.",
        "Il report mensile di utilizzo è pronto.",
    ),
    "saa.rep.extra": ("Stai usando il {pct}% dello spazio incluso nel piano.",),
    "saa.rep.cta": ("Apri la dashboard", "Vedi il report completo"),
    "sup.subj.received": (
        "Abbiamo ricevuto la tua richiesta (#{ticket})",
        "Richiesta {ticket}: {issue}",
    ),
    "sup.subj.replied": ("Re: {issue} [#{ticket}]", "Nuova risposta alla richiesta {ticket}"),
    "sup.subj.solved": ("La richiesta {ticket} è stata risolta", "Risolto: {issue}"),
    "sup.intro.received": (
        "Grazie per aver contattato {brand}. Ti risponderemo entro {hours} ore.",
    ),
    "sup.intro.replied": ("{agent} del nostro team di assistenza ha risposto:",),
    "sup.intro.solved": (
        "Abbiamo segnato la richiesta come risolta. Se ti serve altro, rispondi "
        "a questa email e verrà riaperta.",
    ),
    "sup.extra": ("Puoi rispondere a questa email per aggiungere informazioni.",),
    "sup.cta": ("Vedi richiesta", "Vai alla richiesta"),
    "sup.issues": (
        "Rimborso dell'ordine {order}|Grazie per la pazienza. Abbiamo emesso il "
        "rimborso oggi: lo vedrai entro 5-7 giorni lavorativi.",
        "Domanda sulla fattura|La fattura riguarda l'abbonamento di marzo. Trovi il "
        "dettaglio nel tuo account, nella sezione Fatture.",
        "Articolo mancante nella consegna|Ci dispiace! Abbiamo spedito oggi "
        "l'articolo mancante, non devi fare altro.",
    ),
    "prod.fashion": (
        "Maglione in lana merino|59|129",
        "Camicia di lino, taglia M|39|79",
        "Impermeabile leggero|69|149",
        "Calzini di cotone (confezione da 3)|12|19",
    ),
    "prod.electronics": (
        "Cavo di ricarica USB-C da 2 m|9|19",
        "Cuffie Bluetooth|49|149",
        "Presa smart (confezione da 2)|24|39",
        "Tastiera wireless|29|69",
    ),
    "prod.home": (
        "Copripiumino in lino 155×200|69|119",
        "Padella in ghisa 26 cm|39|79",
        "Asciugamani in spugna (set da 4)|29|49",
        "Lampada da tavolo in ottone|59|139",
    ),
    "prod.grocery": (
        "Caffè in grani 1 kg|16|29",
        "Fiocchi d'avena bio 1 kg|3|6",
        "Olio extravergine di oliva 750 ml|9|19",
        "Tisane assortite|6|12",
    ),
}

_LEX: dict[str, dict[str, tuple[str, ...]]] = {
    "en": _EN,
    "de": _DE,
    "fr": _FR,
    "es": _ES,
    "nl": _NL,
    "it": _IT,
}


# ----------------------------------------------------------------------------- catalogues (en)

_CATALOG_EN: dict[str, tuple[str, ...]] = {
    "fashion": (
        "Merino Crew Sweater|49|120",
        "Relaxed Linen Shirt|35|85",
        "Waxed Cotton Jacket|120|260",
        "Organic Cotton Tee (2-pack)|20|40",
        "Slim Chinos|45|90",
        "Wool Socks (3-pack)|12|24",
        "Canvas Sneakers|55|110",
        "Cashmere Scarf|60|140",
        "Quilted Vest|70|140",
    ),
    "electronics": (
        "USB-C Charging Cable (2 m)|9|19",
        "Wireless Earbuds|49|179",
        '27" 4K Monitor|229|449',
        "Mechanical Keyboard|69|159",
        "Smart Plug (2-pack)|19|39",
        'Laptop Sleeve 14"|19|45',
        "Portable SSD 1 TB|69|129",
        "1080p Webcam|39|89",
        "Power Bank 20,000 mAh|29|59",
    ),
    "home": (
        "Ceramic Pour-Over Set|29|59",
        "Linen Duvet Cover, Queen|89|189",
        'Cast Iron Skillet 10"|29|69',
        "Bamboo Cutting Board|15|35",
        "Brass Table Lamp|59|149",
        "Storage Baskets (set of 3)|25|55",
        "Waffle Bath Towel|18|36",
        "Stoneware Dinner Plates (set of 4)|35|70",
    ),
    "books": (
        "The Quiet Harbour (paperback)|9|18",
        "A Field Guide to City Birds|14|28",
        "Learning Rust, 3rd Edition|29|49",
        "The Salt Road (hardcover)|18|32",
        "Notes on Slow Cooking|16|30",
        "Small Gardens, Big Ideas|12|24",
        "The Night Ferry (paperback)|9|17",
        "Maps of the Inner Sea|15|29",
    ),
    "grocery": (
        "Single-Origin Coffee Beans 500 g|12|22",
        "Organic Rolled Oats 1 kg|4|8",
        "Extra Virgin Olive Oil 750 ml|10|24",
        "Herbal Tea Assortment (40 bags)|6|12",
        "Dark Chocolate 70% (3 bars)|8|15",
        "Sourdough Starter Kit|14|25",
        "Mixed Nuts 500 g|9|16",
    ),
    "outdoor": (
        "Trail Running Shoes|89|160",
        "2-Person Backpacking Tent|149|349",
        "Insulated Water Bottle 750 ml|22|40",
        "Merino Base Layer|55|95",
        "Headlamp 400 lm|25|55",
        "Daypack 22 L|59|119",
        "Trekking Poles (pair)|39|99",
    ),
    "beauty": (
        "Hydrating Face Cream 50 ml|18|45",
        "Vitamin C Serum 30 ml|22|48",
        "Mineral Sunscreen SPF 50|16|32",
        "Solid Shampoo Bar|9|15",
        "Lip Balm Trio|10|18",
        "Hand Wash Refill 500 ml|8|14",
    ),
    "pets": (
        "Grain-Free Dog Food 6 kg|39|69",
        "Cat Scratching Post|29|69",
        "Rope Chew Toy Set|9|19",
        "Reflective Dog Harness (M)|24|45",
        "Salmon Cat Treats|4|8",
        "Orthopedic Pet Bed (L)|59|119",
    ),
}
_VARIANTS_EN: dict[str, tuple[str, ...]] = {
    "fashion": ("Navy, M", "Oatmeal, L", "Black, S", "Olive, 32/32", "Grey, XL", "Rust, M"),
    "electronics": ("Black", "White", "Space Grey", "UK plug", "US plug"),
    "home": ("Natural", "Sage", "Charcoal", "Terracotta"),
    "outdoor": ("Size 9", "Size 42", "Forest", "Slate"),
}
_TITLES_EN: dict[str, tuple[str, ...]] = {
    "fashion": (
        "How to care for wool so it lasts for years",
        "Five ways to wear a linen shirt",
        "Meet the makers behind our spring collection",
        "Our guide to finding your size",
    ),
    "electronics": (
        "Getting the most out of your new earbuds",
        "Home office setup: a checklist",
        "What USB-C power ratings actually mean",
        "Repair or replace? A quick guide",
    ),
    "home": (
        "Small-space storage ideas",
        "A beginner's guide to cast iron",
        "Spring cleaning without harsh chemicals",
        "How we test our bedding",
    ),
    "books": (
        "Staff picks for {month}",
        "An interview with this month's featured author",
        "Ten debut novels we can't stop talking about",
        "Book club questions for our {month} pick",
    ),
    "grocery": (
        "Five dinners in thirty minutes",
        "A guide to single-origin coffee",
        "What's in season this month",
        "How to stock a simple pantry",
    ),
    "outdoor": (
        "Packing list for your first overnight hike",
        "How to choose a sleeping bag",
        "Caring for waterproof gear",
        "Five day hikes near the city",
    ),
    "beauty": (
        "A simple morning routine",
        "Sunscreen myths, explained",
        "What fragrance-free really means",
        "Meet our new refillable range",
    ),
    "pets": (
        "Keeping your dog cool on warm days",
        "Choosing food for a senior cat",
        "Indoor games for rainy days",
        "Dental care for pets, made simple",
    ),
    "saas": (
        "Five automations our customers love",
        "How a small team halved its reporting time",
        "Keyboard shortcuts you might have missed",
        "Our roadmap for the next quarter",
    ),
    "media": (
        "The week in review",
        "Editor's picks",
        "Long read: the future of city transport",
        "Five podcasts worth your commute",
    ),
    "travel": (
        "Weekend trips worth taking this spring",
        "Packing light: a practical guide",
        "Where our team is travelling this year",
        "City breaks under three hours away",
    ),
    "finance": (
        "How to build an emergency fund",
        "Understanding your credit score",
        "Five ways to trim everyday spending",
        "Setting savings goals you'll keep",
    ),
    "health": (
        "Sleep better with small changes",
        "When to book a check-up",
        "Stretches for desk workers",
        "Eating well on a busy schedule",
    ),
}
_PROMO_CATEGORIES_EN: dict[str, tuple[str, ...]] = {
    "fashion": ("knitwear", "outerwear", "spring styles"),
    "electronics": ("audio", "accessories", "smart home"),
    "home": ("bedding", "kitchenware", "lighting"),
    "books": ("bestsellers", "paperbacks", "children's books"),
    "grocery": ("pantry staples", "coffee and tea"),
    "outdoor": ("camping gear", "footwear", "rain gear"),
    "beauty": ("skincare", "sun care"),
    "pets": ("toys and treats", "pet beds"),
    "travel": ("weekend getaways", "city breaks"),
    "streaming": ("annual plans",),
    "telecom": ("annual plans", "SIM-only plans"),
}
_PLANS: dict[str, tuple[str, ...]] = {
    "saas": ("Pro", "Team", "Business", "Starter", "Plus", "Growth"),
    "streaming": ("Premium", "Standard", "Family", "Individual", "Duo"),
    "media": ("Digital", "All Access", "Weekend + Digital"),
    "telecom": ("Unlimited 5G", "Fibre 500", "SIM Only 30 GB", "Green Energy Fixed"),
    "services": ("Monthly Membership", "Off-Peak Membership", "10-Class Pass"),
    "finance": ("Premium", "Metal", "Plus"),
}
_REAL_PLANS: dict[str, tuple[str, ...]] = {
    "Apple": ("iCloud+ 200 GB", "Apple Music Individual", "Apple One Family"),
    "Microsoft": (
        "Microsoft 365 Personal",
        "Microsoft 365 Family",
        "Microsoft 365 Business Standard",
    ),
    "Google": ("Google One 100 GB", "Google One 2 TB", "Google Workspace Business Starter"),
    "Netflix": ("Standard", "Premium", "Standard with ads"),
    "Amazon": ("Prime",),
    "GitHub": ("GitHub Pro", "GitHub Team"),
    "LinkedIn": ("Premium Career",),
    "Booking.com": ("Genius",),
    "PayPal": ("PayPal",),
}
_CARRIERS: dict[str, tuple[str, ...]] = {
    "us": ("UPS", "FedEx", "USPS"),
    "uk": ("Royal Mail", "DPD", "Evri"),
    "ca": ("Canada Post", "Purolator"),
    "au": ("Australia Post",),
    "ie": ("An Post", "DPD"),
    "de": ("DHL", "Hermes", "DPD", "GLS"),
    "fr": ("Colissimo", "Chronopost", "Mondial Relay"),
    "es": ("Correos", "SEUR", "MRW"),
    "nl": ("PostNL", "DHL", "DPD"),
    "it": ("BRT", "Poste Italiane", "GLS"),
}
_PAYMENT_EXTRA: dict[str, tuple[str, ...]] = {
    "en": ("Mastercard ending in {d}", "Visa ending in {d}"),
    "de": ("SEPA-Lastschrift",),
    "fr": ("Carte bancaire •••• {d}",),
    "es": ("Tarjeta •••• {d}",),
    "nl": ("iDEAL",),
    "it": ("Carta •••• {d}",),
}
_VAT_RATES: dict[str, float] = {
    "uk": 0.20,
    "ie": 0.23,
    "au": 0.10,
    "de": 0.19,
    "fr": 0.20,
    "es": 0.21,
    "nl": 0.21,
    "it": 0.22,
}
_BROWSERS: tuple[str, ...] = ("Chrome", "Firefox", "Safari", "Edge")
_SYSTEMS: tuple[str, ...] = ("Windows", "macOS", "iPhone", "iPad", "Android", "Linux", "ChromeOS")
_PHONES: tuple[str, ...] = ("iPhone 15", "Pixel 8", "Galaxy S24", "iPad Air", "iPhone 13")
_ORIGINS: tuple[str, ...] = (
    "London",
    "Frankfurt",
    "Paris",
    "Madrid",
    "Amsterdam",
    "Milan",
    "New York",
    "Toronto",
    "Dublin",
    "Munich",
    "Lyon",
    "Rotterdam",
)


# ----------------------------------------------------------------------------- message model


@dataclass(slots=True)
class _Link:
    label: str
    url: str


@dataclass(slots=True)
class _Section:
    title: str
    text: str
    link: _Link | None = None
    image: str = ""
    price: str = ""
    old_price: str = ""


@dataclass(slots=True)
class _Content:
    subject: str
    marketing: bool = False
    headline: str = ""
    preheader: str = ""
    greeting: str = ""
    paragraphs: list[str] = field(default_factory=list)
    code: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)
    items: list[tuple[str, int, str]] = field(default_factory=list)
    item_header: tuple[str, str, str] = ("", "", "")
    totals: list[tuple[str, str]] = field(default_factory=list)
    quote: str = ""
    cta: _Link | None = None
    sections: list[_Section] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    closing: str = ""
    team: str = ""
    nav: list[_Link] = field(default_factory=list)
    reply_to: str = ""
    local_parts: tuple[str, ...] = ()


_LOCAL_PARTS: dict[str, tuple[str, ...]] = {
    "order_confirmation": (
        "orders",
        "order-update",
        "no-reply",
        "noreply",
        "shop",
        "hello",
        "confirmations",
    ),
    "shipping_update": ("shipping", "delivery", "tracking", "no-reply", "orders", "updates"),
    "receipt": ("receipts", "billing", "invoices", "payments", "no-reply"),
    "subscription_renewal": ("billing", "account", "membership", "no-reply", "hello"),
    "password_reset": ("no-reply", "noreply", "security", "account", "accounts"),
    "signin_alert": ("security", "no-reply", "account-security", "alerts", "noreply"),
    "statement_ready": ("statements", "alerts", "no-reply", "documents", "billing"),
    "newsletter": ("news", "newsletter", "hello", "editors", "stories", "digest"),
    "promotion": ("offers", "hello", "deals", "news", "shop", "members"),
    "reminder": ("appointments", "reminders", "bookings", "reservations", "no-reply", "trips"),
    "event_invitation": ("events", "hello", "community", "webinars", "team"),
    "saas_update": ("product", "updates", "team", "reports", "notifications", "hello"),
    "support_ticket": ("support", "help", "care", "customercare", "service"),
}


class _Ctx:
    """Everything one message is built from: its random source, brand, recipient and values."""

    def __init__(self, rng: random.Random, genre: str, lang: str, brand: _Brand) -> None:
        self.rng = rng
        self.genre = genre
        self.lang = lang
        self.brand = brand
        self.lex = _LEX[lang]
        self.country = brand.country if lang == "en" or brand.country == lang else lang
        self.money_style = rng.randrange(60)
        self.date_style = rng.randrange(4)
        self.time_style = rng.randrange(6)
        day = rng.randint(1, 31)
        hour = rng.choice((6, 7, 8, 9, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22))
        offsets = {
            "us": (-5, -4, -7, 0),
            "uk": (0, 0, 1),
            "ca": (-5, -4, -8, 0),
            "au": (11, 10, 0),
            "ie": (0, 0),
        }.get(self.country, (1, 1, 0, 2))
        offset = rng.choice(offsets)
        self.sent = datetime(
            2026,
            3,
            day,
            hour,
            rng.randrange(60),
            rng.randrange(60),
            tzinfo=timezone(timedelta(hours=offset)),
        )
        self.today = self.sent.date()
        self.first = rng.choice(self.lex["first"])
        self.last = rng.choice(self.lex["last"])
        self.email = _recipient_address(rng, self.first, self.last)
        self.agent = rng.choice(self.lex["first"])
        self.tracked = (not brand.real) and rng.random() < (
            0.5 if genre in ("newsletter", "promotion", "event_invitation") else 0.15
        )
        self.track_style = rng.randrange(4)
        self.utm = rng.random() < 0.45
        self.campaign = f"{_MONTHS['en'][2].lower()}-{_token(rng, 4, 'abcdefghkmnpqrstuvwxyz')}"
        self.processor = ""
        self.vals: dict[str, str] = {
            "brand": brand.name,
            "first": self.first,
            "last": self.last,
            "email": self.email,
            "agent": self.agent,
            "domain": brand.domain,
            "legal": brand.legal,
            "month": _MONTHS[lang][2],
        }

    # -- choosing text
    def pick(self, key: str) -> str:
        return _tidy(self.rng.choice(self.lex[key]).format_map(self.vals))

    def maybe(self, key: str, probability: float) -> list[str]:
        return [self.pick(key)] if self.rng.random() < probability else []

    def label(self, key: str) -> str:
        return self.rng.choice(self.lex["l." + key])

    def pair(self, key: str) -> tuple[str, str]:
        first, _, second = self.rng.choice(self.lex[key]).partition("|")
        return first.format_map(self.vals), second.format_map(self.vals)

    # -- formatting
    def money(self, amount: float) -> str:
        return _format_money(amount, self.brand.currency, self.lang, self.money_style)

    def date(self, day: date) -> str:
        return _format_date(day, self.lang, self.country, self.date_style)

    def time(self, hour: int, minute: int) -> str:
        return _format_time(hour, minute, self.lang, self.country, self.time_style)

    def price(self, low: float, high: float) -> float:
        value = self.rng.uniform(low, high)
        ending = self.rng.choice((0.99, 0.0, 0.95, 0.5, 0.99, 0.0))
        return max(1.0, float(int(value)) + ending)

    # -- links
    def url(self, path: str, host: str = "", utm: bool = False) -> str:
        url = f"https://{host or self.brand.web}{path}"
        if utm and self.utm:
            sep = "&" if "?" in url else "?"
            url += f"{sep}utm_source=email&utm_medium=email&utm_campaign={self.campaign}"
        if self.tracked:
            return self._tracked(url)
        return url

    def _tracked(self, url: str) -> str:
        host = self.brand.track
        token = _token(self.rng, self.rng.randint(24, 56))
        if self.track_style == 0:
            return f"https://{host}/ls/click?upn={token}"
        if self.track_style == 1:
            return f"https://{host}/c/{token}"
        if self.track_style == 2:
            return f"https://{host}/r/{_token(self.rng, 8)}/{token}"
        return f"https://{host}/mpss/c/{_token(self.rng, 12)}/{token}"

    def image(self, path: str) -> str:
        return f"https://{self.brand.cdn}{path}"


def _recipient_address(rng: random.Random, first: str, last: str) -> str:
    f = _slug(first).replace("-", "")
    last_part = _slug(last).replace("-", "")
    local = rng.choice(
        (
            f"{f}.{last_part}",
            f"{f}{last_part}",
            f"{f[0]}.{last_part}",
            f"{f}_{last_part}",
            f"{f}{rng.randint(2, 99)}",
            f"{last_part}.{f}",
            f"{f}.{last_part}{rng.randint(70, 99)}",
            f"{f[0]}{last_part}",
        )
    )
    return f"{local}@{rng.choice(('example.com', 'example.net', 'example.org'))}"


# ----------------------------------------------------------------------------- genre builders


def _pick_avoiding(ctx: _Ctx, key: str, *avoid: str) -> str:
    """A variant of ``key`` containing none of ``avoid`` (any variant if all of them do)."""
    options = [text for text in ctx.lex[key] if not any(a in text for a in avoid)]
    return _tidy(ctx.rng.choice(options or list(ctx.lex[key])).format_map(ctx.vals))


def _tidy(text: str) -> str:
    """Collapse the doubled full stop left where a value ends in one ("Inc.", "p.m.")."""
    return _DOUBLE_STOP_RE.sub(".", text) if ".." in text else text


_DOUBLE_STOP_RE = re.compile(r"(?<!\.)\.\.(?!\.)")


def _format_int(number: int, lang: str) -> str:
    text = f"{number:,}"
    if lang == "en":
        return text
    return text.replace(",", "\u202f" if lang == "fr" else ".")


def _percent(value: str, lang: str) -> str:
    if lang == "en":
        return f"{value}%"
    value = value.replace(".", ",")
    return f"{value} %" if lang in ("de", "fr", "es") else f"{value}%"


def _products(ctx: _Ctx, count: int) -> list[tuple[str, int, float]]:
    rng = ctx.rng
    local = ctx.lex.get(f"prod.{ctx.brand.sector}")
    catalog = local or _CATALOG_EN.get(ctx.brand.sector) or _CATALOG_EN["home"]
    chosen = rng.sample(catalog, k=min(count, len(catalog)))
    products: list[tuple[str, int, float]] = []
    for entry in chosen:
        name, low, high = entry.split("|")
        variants = _VARIANTS_EN.get(ctx.brand.sector)
        if not local and variants and rng.random() < 0.5:
            name = f"{name} - {rng.choice(variants)}"
        quantity = rng.choice((1, 1, 1, 1, 2, 2, 3))
        products.append((name, quantity, ctx.price(float(low), float(high))))
    return products


def _order_number(rng: random.Random) -> str:
    style = rng.randrange(6)
    if style == 0:
        return f"{_digits(rng, 3)}-{_digits(rng, 7)}-{_digits(rng, 7)}"
    if style == 1:
        return _digits(rng, 8)
    if style == 2:
        return _token(rng, 2, "ABCDEFGHJKLMNPRSTUVWXYZ") + _digits(rng, 6)
    if style == 3:
        return "W" + _digits(rng, 9)
    if style == 4:
        return _digits(rng, 5)
    return f"{_digits(rng, 4)}-{_token(rng, 4, _UPPER_DIGITS)}"


def _tracking_number(rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return "1Z" + _token(rng, 16, _UPPER_DIGITS)
    if style == 1:
        return _digits(rng, 12)
    if style == 2:
        return "JJD" + _digits(rng, 17)
    return (
        _token(rng, 2, "ABCDEFGHLMNRSTV") + _digits(rng, 9) + rng.choice(("GB", "DE", "NL", "FR"))
    )


def _invoice_number(rng: random.Random, brand: _Brand) -> str:
    style = rng.randrange(4)
    if style == 0:
        return f"INV-2026-{_digits(rng, 5)}"
    if style == 1:
        prefix = re.sub(r"[^A-Z]", "", brand.name.upper())[:3] or "INV"
        return f"{prefix}-{_digits(rng, 6)}"
    if style == 2:
        return _token(rng, 8, "0123456789ABCDEF") + "-" + _digits(rng, 4)
    return _digits(rng, 10)


def _payment_method(ctx: _Ctx) -> str:
    rng = ctx.rng
    last4 = _token(rng, 4, "0123456789")
    options = [
        f"Visa •••• {last4}",
        f"Mastercard •••• {last4}",
        "PayPal",
        "Apple Pay",
        "Google Pay",
        f"Amex •••• {_token(rng, 4, '0123456789')}",
    ]
    options.extend(text.format(d=last4) for text in _PAYMENT_EXTRA[ctx.lang])
    if ctx.brand.name == "PayPal":
        return rng.choice((f"Visa •••• {last4}", f"Mastercard •••• {last4}"))
    return rng.choice(options)


def _plan_name(ctx: _Ctx) -> str:
    real = _REAL_PLANS.get(ctx.brand.legal) if ctx.brand.real else None
    if real:
        return ctx.rng.choice(real)
    plan = ctx.rng.choice(_PLANS.get(ctx.brand.sector, _PLANS["saas"]))
    return f"{ctx.brand.name} {plan}" if ctx.rng.random() < 0.4 else plan


def _plan_price(ctx: _Ctx) -> float:
    low, high = {
        "saas": (8, 49),
        "streaming": (5, 20),
        "media": (4, 15),
        "telecom": (20, 60),
        "services": (25, 60),
        "finance": (5, 17),
    }.get(ctx.brand.sector, (6, 30))
    if ctx.brand.real:
        low, high = 2, 22
    return ctx.price(low, high)


def _totals(ctx: _Ctx, subtotal: float, shipping: float) -> tuple[list[tuple[str, str]], float]:
    rows = [
        (ctx.label("subtotal"), ctx.money(subtotal)),
        (ctx.label("shipping"), ctx.money(shipping) if shipping else ctx.pick("free")),
    ]
    total = subtotal + shipping
    if ctx.country in ("us", "ca"):
        tax = round(total * ctx.rng.choice((0.0625, 0.08, 0.0875, 0.13, 0.05)), 2)
        rows.append((ctx.label("tax"), ctx.money(tax)))
        total += tax
    elif ctx.rng.random() < 0.6:
        rate = _VAT_RATES.get(ctx.country, 0.2)
        rows.append((ctx.label("vat"), ctx.money(total - total / (1 + rate))))
    rows.append((ctx.label("total"), ctx.money(total)))
    return rows, total


def _items_table(
    ctx: _Ctx, items: list[tuple[str, int, float]], prices: bool, content: _Content
) -> None:
    content.items = [
        (name, qty, ctx.money(qty * unit) if prices else "") for name, qty, unit in items
    ]
    content.item_header = (
        ctx.label("item"),
        ctx.label("qty"),
        ctx.label("price") if prices else "",
    )


def _build_order(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    items = _products(ctx, rng.choice((1, 1, 1, 2, 2, 3, 4)))
    subtotal = sum(qty * unit for _, qty, unit in items)
    order = _order_number(rng)
    shipping = (
        0.0 if subtotal > 60 or rng.random() < 0.3 else rng.choice((2.99, 3.99, 4.95, 5.99, 7.5))
    )
    delivery = ctx.today + timedelta(days=rng.randint(2, 7))
    ctx.vals.update(
        order=order, item=items[0][0], odate=ctx.date(ctx.today), ddate=ctx.date(delivery)
    )
    totals, total = _totals(ctx, subtotal, shipping)
    ctx.vals["total"] = ctx.money(total)
    content = _Content(subject=ctx.pick("ord.subj"))
    content.headline = ctx.pick("ord.head") if rng.random() < 0.7 else ""
    content.paragraphs = [ctx.pick("ord.intro")]
    content.details = [(ctx.label("order_no"), order)]
    if rng.random() < 0.6:
        content.details.append((ctx.label("order_date"), ctx.vals["odate"]))
    if rng.random() < 0.7:
        content.details.append((ctx.label("eta"), ctx.vals["ddate"]))
    if rng.random() < 0.5:
        content.details.append((ctx.label("payment"), _payment_method(ctx)))
    if rng.random() < 0.5:
        content.details.append(
            (ctx.label("ship_to"), f"{ctx.first} {ctx.last}, {_address(rng, ctx.country)}")
        )
    _items_table(ctx, items, True, content)
    content.totals = totals
    path = rng.choice(("/orders/", "/account/orders/", "/order-status/", "/your-orders/"))
    content.cta = _Link(ctx.pick("ord.cta"), ctx.url(path + order, ctx.brand.account))
    content.after = ctx.maybe("ord.extra", 0.6)
    return content


def _build_shipping(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    status = rng.choice(("shipped", "shipped", "out", "delivered"))
    courier = ctx.brand.sector == "courier"
    carrier = ctx.brand.name if courier else rng.choice(_CARRIERS[ctx.country])
    items = _products(ctx, rng.choice((1, 1, 2, 3))) if not courier else []
    order = _order_number(rng)
    tracking = _tracking_number(rng)
    delivery = ctx.today + timedelta(days=0 if status != "shipped" else rng.randint(1, 5))
    start = rng.choice((8, 9, 10, 11, 12, 13, 14, 15))
    window = rng.choice(ctx.lex["window"]).format(
        a=ctx.time(start, 0), b=ctx.time(start + rng.choice((2, 3, 4)), 0)
    )
    ctx.vals.update(
        order=order,
        item=items[0][0] if items else "",
        carrier=carrier,
        ddate=ctx.date(delivery),
        window=window,
        tracking=tracking,
        time=ctx.time(rng.randint(9, 19), rng.randrange(60)),
        spot=ctx.pick("shp.spot"),
    )
    avoid = "{item}" if courier else "\x00"

    def pick(key: str) -> str:
        text = _pick_avoiding(ctx, key, avoid)
        return _pick_avoiding(ctx, key, "{order}") if courier and "{order}" in text else text

    content = _Content(subject=pick(f"shp.subj.{status}"))
    content.headline = pick(f"shp.head.{status}") if rng.random() < 0.7 else ""
    content.paragraphs = [pick(f"shp.intro.{status}")]
    content.details = [(ctx.label("tracking"), tracking)]
    if not courier:
        content.details.insert(0, (ctx.label("order_no"), order))
        if rng.random() < 0.6:
            content.details.append((ctx.label("carrier"), carrier))
    if status != "delivered" and rng.random() < 0.7:
        content.details.append((ctx.label("eta"), ctx.vals["ddate"]))
    if items and rng.random() < 0.5:
        _items_table(ctx, items, False, content)
    if courier:
        path = rng.choice(
            (
                f"/tracking?id={tracking}",
                f"/en/home/tracking.html?tracking-id={tracking}",
                f"/track/{tracking}",
            )
        )
    else:
        path = rng.choice(
            (f"/track/{tracking}", f"/orders/{order}/tracking", f"/shipments/{_token(rng, 12)}")
        )
    content.cta = _Link(ctx.pick("shp.cta"), ctx.url(path))
    content.after = ctx.maybe("shp.extra", 0.5)
    return content


def _processor_receipt_url(rng: random.Random, processor: str) -> str:
    if processor == "stripe.com":
        if rng.random() < 0.5:
            return f"https://pay.stripe.com/receipts/payment/{_token(rng, 64)}"
        return f"https://invoice.stripe.com/i/acct_{_token(rng, 16)}/live_{_token(rng, 48)}"
    if processor == "paddle.com":
        return f"https://customer-portal.paddle.com/receipts/{_token(rng, 32)}"
    return f"https://squareup.com/receipt/preview/{_token(rng, 28)}"


def _build_receipt(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    brand = ctx.brand
    invoice = _invoice_number(rng, brand)
    order = _order_number(rng)
    plan = _plan_name(ctx)
    retail = brand.sector in _RETAIL_SECTORS
    if not brand.real and rng.random() < 0.45:
        ctx.processor = rng.choice(PROCESSOR_DOMAINS)
    paid_on = ctx.today - timedelta(days=rng.choice((0, 0, 0, 1)))
    ctx.vals.update(
        invoice=invoice,
        order=order,
        plan=plan,
        ddate_paid=ctx.date(paid_on),
        processor={"stripe.com": "Stripe", "paddle.com": "Paddle", "squareup.com": "Square"}.get(
            ctx.processor, ""
        ),
    )
    content = _Content(subject="")
    if retail:
        items = _products(ctx, rng.choice((1, 1, 2, 3)))
        totals, total = _totals(ctx, sum(q * u for _, q, u in items), 0.0)
        _items_table(ctx, items, True, content)
        content.totals = totals
        ctx.vals["desc"] = _pick_avoiding(ctx, "rcp.desc", "{plan}")
    else:
        price = _plan_price(ctx) * (10 if rng.random() < 0.25 else 1)
        total = price
        content.items = [(plan, 1, ctx.money(price))]
        content.item_header = (ctx.label("item"), ctx.label("qty"), ctx.label("price"))
        content.totals = [(ctx.label("total"), ctx.money(price))]
        ctx.vals["desc"] = _pick_avoiding(ctx, "rcp.desc", "{order}")
    ctx.vals["total"] = ctx.money(total)
    descriptor = re.sub(r"[^A-Z0-9 ]", "", brand.name.upper())[:14]
    ctx.vals["descriptor"] = rng.choice(
        (descriptor, f"{descriptor}*{_token(rng, 6, _UPPER_DIGITS)}", brand.domain.upper())
    )
    content.subject = ctx.pick("rcp.subj")
    content.headline = ctx.pick("rcp.head") if rng.random() < 0.7 else ""
    content.paragraphs = [ctx.pick("rcp.intro")]
    content.details = [
        (ctx.label("invoice"), invoice),
        (ctx.label("date_paid"), ctx.vals["ddate_paid"]),
    ]
    if rng.random() < 0.7:
        content.details.append((ctx.label("payment"), _payment_method(ctx)))
    if rng.random() < 0.4:
        content.details.append((ctx.label("amount"), ctx.vals["total"]))
    if ctx.processor:
        content.cta = _Link(ctx.pick("rcp.cta"), _processor_receipt_url(rng, ctx.processor))
        content.after = [ctx.pick("rcp.proc")] if rng.random() < 0.6 else []
    else:
        path = rng.choice(
            (
                f"/billing/invoices/{invoice}",
                f"/account/receipts/{_token(rng, 20)}",
                f"/invoices/{invoice}.pdf",
                f"/orders/{order}/invoice",
            )
        )
        content.cta = _Link(ctx.pick("rcp.cta"), ctx.url(path, brand.account))
    content.after += ctx.maybe("rcp.extra", 0.5)
    return content


def _build_subscription(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    plan = _plan_name(ctx)
    annual = rng.random() < 0.3
    amount = _plan_price(ctx) * (10 if annual else 1)
    stage = rng.choice(("up", "up", "done"))
    days = rng.randint(3, 14)
    renew = (
        ctx.today + timedelta(days=days)
        if stage == "up"
        else ctx.today + timedelta(days=365 if annual else 30)
    )
    ctx.vals.update(
        plan=plan,
        rdate=ctx.date(renew),
        amount=ctx.money(amount),
        method=_payment_method(ctx),
        days=str(days),
        period="year" if annual else "month",
    )
    content = _Content(subject=ctx.pick(f"sub.subj.{stage}"))
    content.headline = ctx.pick(f"sub.head.{stage}") if rng.random() < 0.6 else ""
    content.paragraphs = [ctx.pick(f"sub.intro.{stage}")]
    content.details = [
        (ctx.label("plan"), plan),
        (ctx.label("renews"), ctx.vals["rdate"]),
        (ctx.label("amount" if stage == "done" else "price"), ctx.vals["amount"]),
    ]
    if rng.random() < 0.5:
        content.details.append((ctx.label("payment"), ctx.vals["method"]))
    path = rng.choice(
        (
            "/account/subscription",
            "/settings/billing",
            "/account/membership",
            "/billing",
            "/manage-plan",
        )
    )
    content.cta = _Link(ctx.pick("sub.cta"), ctx.url(path, ctx.brand.account))
    content.after = ctx.maybe("sub.extra", 0.7)
    return content


def _build_password_reset(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    ctx.vals["minutes"] = str(rng.choice((10, 15, 20, 30, 60, 60, 120)))
    content = _Content(subject=ctx.pick("pwd.subj"))
    content.headline = ctx.pick("pwd.head") if rng.random() < 0.6 else ""
    if rng.random() < 0.25:
        content.paragraphs = [ctx.lex["pwd.intro"][0].format_map(ctx.vals), ctx.pick("pwd.code")]
        content.code = _token(rng, 6, "0123456789")
        content.after = [ctx.pick("pwd.ignore")]
        return content
    content.paragraphs = [ctx.pick("pwd.intro")]
    token = _token(rng, rng.choice((32, 40, 64)))
    path = rng.choice(
        (
            f"/password/reset?token={token}",
            f"/account/recover/{token}",
            f"/reset-password/{token}",
            f"/auth/reset?t={token}&lang={ctx.lang}",
        )
    )
    content.cta = _Link(ctx.pick("pwd.cta"), f"https://{ctx.brand.account}{path}")
    content.after = [ctx.pick("pwd.expiry"), ctx.pick("pwd.ignore")]
    if rng.random() < 0.3:
        content.after.reverse()
    return content


def _build_signin(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    system = rng.choice(_SYSTEMS)
    browser = rng.choice(
        _BROWSERS if system in ("macOS", "iPhone", "iPad") else _BROWSERS[:2] + _BROWSERS[3:]
    )
    on = ctx.pick("on")
    device = rng.choice(
        (f"{browser} {on} {system}", f"{browser} {on} {system}", rng.choice(_PHONES))
    )
    ctx.vals.update(device=device, os=system, location=ctx.pick("cities_signin"))
    content = _Content(subject=ctx.pick("sgn.subj"))
    content.headline = ctx.pick("sgn.head") if rng.random() < 0.6 else ""
    content.paragraphs = [ctx.pick("sgn.intro")]
    when = f"{ctx.date(ctx.today)}, {ctx.time(ctx.sent.hour, max(0, ctx.sent.minute - 3))}"
    content.details = [
        (ctx.label("device"), device),
        (ctx.label("location"), ctx.vals["location"]),
        (ctx.label("when"), when),
    ]
    content.after = [ctx.pick("sgn.ok"), ctx.pick("sgn.notme")]
    if rng.random() < 0.75:
        path = rng.choice(
            (
                "/security",
                "/settings/security",
                "/account/activity",
                "/device-activity",
                "/security/sessions",
            )
        )
        content.cta = _Link(ctx.pick("sgn.cta"), f"https://{ctx.brand.account}{path}")
    return content


def _build_statement(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    finance = ctx.brand.sector == "finance"
    month = _MONTHS[ctx.lang][1]
    ctx.vals["month"] = month
    period_end = date(2026, 2, 28)
    due = ctx.today + timedelta(days=rng.randint(8, 21))
    balance = ctx.price(120, 4800) if finance else ctx.price(25, 140)
    ctx.vals.update(sdate=ctx.date(period_end), balance=ctx.money(balance))
    content = _Content(subject=ctx.pick("stm.subj"))
    content.headline = ctx.pick("stm.head") if rng.random() < 0.5 else ""
    content.paragraphs = [ctx.pick("stm.intro")]
    content.details = [
        (ctx.label("account_end"), "•••• " + _token(rng, 4, "0123456789")),
        (ctx.label("period"), f"{ctx.date(date(2026, 2, 1))} - {ctx.date(period_end)}"),
        (ctx.label("balance"), ctx.vals["balance"]),
    ]
    if finance and rng.random() < 0.5:
        content.details.append((ctx.label("min_pay"), ctx.money(max(25.0, balance * 0.03))))
    content.details.append((ctx.label("due"), ctx.date(due)))
    if rng.random() < 0.85:
        path = rng.choice(
            ("/statements", "/documents", "/billing", "/account/statements", "/inbox/documents")
        )
        content.cta = _Link(ctx.pick("stm.cta"), f"https://{ctx.brand.account}{path}")
    content.after = ctx.maybe("stm.extra", 0.7)
    return content


def _titles(ctx: _Ctx) -> list[str]:
    titles = list(ctx.lex["nws.titles"])
    if ctx.lang == "en":
        titles.extend(_TITLES_EN.get(ctx.brand.sector, ()) * 2)
    return [t.format_map(ctx.vals) for t in titles]


def _build_newsletter(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    titles = list(dict.fromkeys(_titles(ctx)))
    chosen = rng.sample(titles, k=min(len(titles), rng.randint(2, 5)))
    ctx.vals["title"] = chosen[0]
    content = _Content(subject=ctx.pick("nws.subj"), marketing=True)
    content.headline = ctx.pick("nws.head") if rng.random() < 0.5 else ""
    content.paragraphs = [ctx.pick("nws.intro")]
    section = rng.choice(("blog", "journal", "stories", "news", "magazine", "learn"))
    more = ctx.pick("nws.more")
    blurbs = list(ctx.lex["nws.blurbs"])
    rng.shuffle(blurbs)
    with_images = rng.random() < 0.6
    for index, title in enumerate(chosen):
        slug = _slug(title)
        content.sections.append(
            _Section(
                title=title,
                text=blurbs[index % len(blurbs)].format_map(ctx.vals),
                link=_Link(
                    more if rng.random() < 0.8 else title, ctx.url(f"/{section}/{slug}", utm=True)
                ),
                image=ctx.image(f"/email/2026/03/{slug[:24]}-{_token(rng, 6)}.jpg")
                if with_images
                else "",
            )
        )
    content.after = [text for text in ctx.maybe("nws.outro", 0.8) if text]
    if rng.random() < 0.3:
        content.nav = [
            _Link(label, ctx.url(path, utm=True))
            for label, path in (entry.split("|") for entry in rng.sample(ctx.lex["nav"], k=3))
        ]
    return content


def _build_promotion(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    percent = rng.choice((10, 15, 20, 20, 25, 30, 40, 50))
    code = ""
    if rng.random() < 0.6:
        code = rng.choice(
            ("SPRING", "HELLO", "THANKS", "MARCH", "WELCOME", "EXTRA", "TREAT", "MEMBER")
        ) + str(percent)
    retail = ctx.brand.sector in _RETAIL_SECTORS
    categories = list(ctx.lex["prm.cat"]) if retail else []
    if ctx.lang == "en":
        categories.extend(_PROMO_CATEGORIES_EN.get(ctx.brand.sector, ()) * 2)
    categories = categories or list(ctx.lex["prm.cat"])
    end = ctx.today + timedelta(days=rng.randint(2, 10))
    ctx.vals.update(
        percent=str(percent),
        code=code,
        category=rng.choice(categories),
        edate=ctx.date(end),
        threshold=ctx.money(rng.choice((35, 49, 50, 75))),
    )
    # Shop-only wording (deliveries, new arrivals) stays out of travel and subscription offers.
    avoid = ("" if code else "{code}",) + (
        () if retail else ("arrivals", "shipping", "pieces", "{threshold}", "order")
    )

    def pick(key: str) -> str:
        return _pick_avoiding(ctx, key, *[a for a in avoid if a])

    content = _Content(subject=pick("prm.subj"), marketing=True)
    content.headline = pick("prm.head") if rng.random() < 0.7 else ""
    content.paragraphs = [pick("prm.intro")]
    if code:
        content.paragraphs.append(ctx.pick("prm.code"))
        if rng.random() < 0.5:
            content.code = code
    if retail and rng.random() < 0.75:
        for name, _, unit in _products(ctx, rng.randint(2, 4)):
            content.sections.append(
                _Section(
                    title=name,
                    text="",
                    price=ctx.money(unit * (100 - percent) / 100),
                    old_price=ctx.money(unit),
                    link=_Link(name, ctx.url(f"/products/{_slug(name)}", utm=True)),
                    image=ctx.image(f"/products/{_token(rng, 10)}/{_slug(name)[:30]}.jpg"),
                )
            )
    path = rng.choice(
        (
            "/sale",
            f"/collections/{_slug(ctx.vals['category'])}",
            "/offers",
            "/spring-sale",
            "/deals",
        )
    )
    content.cta = _Link(ctx.pick("prm.cta"), ctx.url(path, utm=True))
    content.after = [pick("prm.terms")] if rng.random() < 0.8 else []
    if rng.random() < 0.4:
        content.nav = [
            _Link(label, ctx.url(path, utm=True))
            for label, path in (entry.split("|") for entry in rng.sample(ctx.lex["nav"], k=4))
        ]
    return content


def _build_reminder(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    sector = ctx.brand.sector
    kind = "appt" if sector in ("health", "services") else rng.choice(("stay", "trip"))
    if ctx.brand.legal == "Booking.com":
        kind = "stay"
    days = rng.randint(1, 12)
    when = ctx.today + timedelta(days=days)
    ref = _token(rng, 6, _UPPER_DIGITS) if rng.random() < 0.6 else _digits(rng, 10)
    city = ctx.pick("cities")
    hour = rng.randint(8, 18) if kind != "stay" else rng.choice((14, 15, 16))
    minute = rng.choice((0, 15, 30, 45)) if kind != "stay" else 0
    ctx.vals.update(
        adate=ctx.date(when), time=ctx.time(hour, minute), days=str(days), ref=ref, city=city
    )
    details: list[tuple[str, str]] = []
    if kind == "appt":
        health = sector == "health"
        service = ctx.pick("rem.service.health" if health else "rem.service.other")
        provider = f"Dr. {rng.choice(ctx.lex['last'])}" if health else rng.choice(ctx.lex["first"])
        ctx.vals.update(service=service, provider=provider)
        details = [
            (ctx.label("service"), _capitalize(service)),
            (ctx.label("with"), provider),
            (ctx.label("when"), f"{ctx.vals['adate']}, {ctx.vals['time']}"),
        ]
        if ctx.brand.address:
            details.append((ctx.label("where"), ctx.brand.address))
        path = rng.choice((f"/appointments/{ref}", f"/booking/manage/{ref}", "/my-appointments"))
    elif kind == "stay":
        stem = rng.choice(_SYLLABLES_START) + rng.choice(_SYLLABLES_END)
        ctx.vals["x"] = stem.capitalize()
        hotel = ctx.pick("hotel")
        ctx.vals["hotel"] = hotel
        nights = rng.randint(1, 6)
        details = [
            (ctx.label("ref"), ref),
            (ctx.label("where"), f"{hotel}, {city}"),
            (ctx.label("checkin"), f"{ctx.vals['adate']}, {ctx.vals['time']}"),
            (ctx.label("checkout"), ctx.date(when + timedelta(days=nights))),
        ]
        path = rng.choice((f"/mybooking/{ref}", f"/bookings/{ref}/manage", f"/trips/{ref}"))
    else:
        origin = rng.choice([o for o in _ORIGINS if o != city])
        prefix = re.sub(r"[^A-Z]", "", ctx.brand.name.upper())[:2].ljust(2, "X")
        flight = f"{prefix} {rng.randint(100, 2999)}"
        ctx.vals.update(origin=origin, flight=flight)
        details = [
            (ctx.label("flight"), f"{flight}  {origin} → {city}"),
            (ctx.label("depart"), f"{ctx.vals['adate']}, {ctx.vals['time']}"),
            (ctx.label("ref"), ref),
        ]
        path = rng.choice(
            (
                f"/manage-booking?ref={ref}&name={_slug(ctx.last)}",
                f"/checkin/{ref}",
                f"/trips/{ref}",
            )
        )
    content = _Content(subject=ctx.pick(f"rem.{kind}.subj"))
    content.local_parts = (
        ("appointments", "reminders", "bookings", "no-reply", "hello")
        if kind == "appt"
        else ("reservations", "bookings", "trips", "no-reply", "travel")
    )
    content.paragraphs = [ctx.pick(f"rem.{kind}.intro")]
    content.details = details
    content.cta = _Link(ctx.pick(f"rem.{kind}.cta"), ctx.url(path, ctx.brand.account))
    content.after = ctx.maybe(f"rem.{kind}.extra", 0.7)
    return content


def _build_event(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    topic = ctx.pick("evt.topic")
    ctx.vals.update(topic=topic, topic_title=_capitalize(topic), city=ctx.pick("cities"))
    event = ctx.pick("evt.name")
    when = ctx.today + timedelta(days=rng.randint(7, 40))
    online = rng.random() < (0.8 if ctx.brand.sector == "saas" else 0.45)
    hour = rng.choice((10, 11, 12, 14, 16, 17, 18, 19))
    ctx.vals.update(event=event, edate=ctx.date(when), minutes=str(rng.choice((30, 45, 60, 90))))
    content = _Content(subject=ctx.pick("evt.subj"), marketing=True)
    content.headline = _capitalize(ctx.pick("evt.head")) if rng.random() < 0.6 else ""
    content.paragraphs = [ctx.pick("evt.intro")]
    where = ctx.label("online") if online or not ctx.brand.address else ctx.brand.address
    content.details = [
        (ctx.label("when"), ctx.vals["edate"]),
        (ctx.label("time"), ctx.time(hour, rng.choice((0, 0, 30)))),
        (ctx.label("where"), where),
    ]
    slug = _slug(event)
    path = rng.choice(
        (
            f"/events/{slug}",
            f"/webinars/{slug}/register",
            f"/rsvp/{_token(rng, 10)}",
            f"/events/{slug}?invite={_token(rng, 8)}",
        )
    )
    content.cta = _Link(ctx.pick("evt.cta"), ctx.url(path, utm=True))
    content.after = ctx.maybe("evt.extra", 0.7)
    return content


def _build_saas(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    app_host = ctx.brand.account
    if rng.random() < 0.55:
        features = [
            entry.split("|") for entry in rng.sample(ctx.lex["saa.features"], k=rng.randint(2, 4))
        ]
        ctx.vals["feature"] = features[0][0]
        content = _Content(subject=ctx.pick("saa.upd.subj"), marketing=rng.random() < 0.7)
        content.paragraphs = [ctx.pick("saa.upd.intro")]
        for name, text in features:
            link = None
            if rng.random() < 0.5:
                link = _Link(_capitalize(name), ctx.url(f"/changelog#{_slug(name)}", utm=True))
            content.sections.append(_Section(title=_capitalize(name), text=text, link=link))
        path = rng.choice(("/changelog", "/whats-new", "/blog/release-notes-march-2026"))
        content.cta = _Link(ctx.pick("saa.upd.cta"), ctx.url(path, utm=True))
        content.after = ctx.maybe("saa.upd.extra", 0.6)
        return content
    stem = rng.choice(_SYLLABLES_START) + rng.choice(_SYLLABLES_END)
    workspace = rng.choice(
        (
            f"{stem.capitalize()} {rng.choice(('Design', 'Ops', 'Marketing'))}",
            f"{ctx.last} & Partners",
            f"{stem}-team",
            f"{ctx.first}'s workspace",
        )
    )
    monday = ctx.today - timedelta(days=ctx.today.weekday() + 7)
    ctx.vals.update(
        workspace=workspace,
        wdate=ctx.date(monday),
        days=rng.choice(("7", "30")),
        pct=str(rng.randint(12, 88)),
    )
    content = _Content(subject=ctx.pick("saa.rep.subj"))
    content.paragraphs = [ctx.pick("saa.rep.intro")]
    storage = f"{rng.randint(1, 480)}{',' if ctx.lang != 'en' else '.'}{rng.randint(0, 9)} GB"
    metrics = [
        ("m_users", _format_int(rng.randint(2, 240), ctx.lang)),
        ("m_projects", _format_int(rng.randint(1, 90), ctx.lang)),
        ("m_storage", storage),
        ("m_requests", _format_int(rng.randint(1_000, 2_400_000), ctx.lang)),
        ("m_uptime", _percent(rng.choice(("99.99", "99.98", "100", "99.95")), ctx.lang)),
    ]
    rng.shuffle(metrics)
    content.details = [(ctx.label("workspace"), workspace)] + [
        (ctx.label(key), value) for key, value in metrics[: rng.randint(3, 5)]
    ]
    path = rng.choice(("/dashboard", "/reports/usage", f"/w/{_slug(workspace)}/insights"))
    content.cta = _Link(ctx.pick("saa.rep.cta"), f"https://{app_host}{path}")
    content.after = ctx.maybe("saa.rep.extra", 0.6)
    return content


def _build_support(ctx: _Ctx) -> _Content:
    rng = ctx.rng
    status = rng.choice(("received", "replied", "replied", "solved"))
    ticket = _digits(rng, rng.choice((5, 6, 7)))
    ctx.vals.update(ticket=ticket, order=_order_number(rng), hours=rng.choice(("24", "48", "12")))
    issue, reply = ctx.pair("sup.issues")
    ctx.vals["issue"] = issue
    content = _Content(subject=ctx.pick(f"sup.subj.{status}"))
    content.paragraphs = [ctx.pick(f"sup.intro.{status}")]
    if status == "replied":
        content.quote = reply
    content.details = [(ctx.label("ticket"), f"#{ticket}")] if rng.random() < 0.6 else []
    if rng.random() < 0.7:
        path = rng.choice(
            (
                f"/hc/requests/{ticket}",
                f"/support/tickets/{ticket}",
                f"/help/requests/{ticket}",
                f"/contact/case/{ticket}",
            )
        )
        content.cta = _Link(ctx.pick("sup.cta"), ctx.url(path, ctx.brand.help))
    content.after = ctx.maybe("sup.extra", 0.6)
    content.reply_to = f"{rng.choice(('support', 'help', 'care'))}@{ctx.brand.domain}"
    return content


_BUILDERS: dict[str, Callable[[_Ctx], _Content]] = {
    "order_confirmation": _build_order,
    "shipping_update": _build_shipping,
    "receipt": _build_receipt,
    "subscription_renewal": _build_subscription,
    "password_reset": _build_password_reset,
    "signin_alert": _build_signin,
    "statement_ready": _build_statement,
    "newsletter": _build_newsletter,
    "promotion": _build_promotion,
    "reminder": _build_reminder,
    "event_invitation": _build_event,
    "saas_update": _build_saas,
    "support_ticket": _build_support,
}


# ----------------------------------------------------------------------------- footer


@dataclass(slots=True)
class _Footer:
    links: list[_Link]
    sentences: list[str]
    address: str
    copyright: str
    socials: list[_Link]
    view_online: _Link | None
    unsubscribe_url: str


_SOCIAL: tuple[tuple[str, str], ...] = (
    ("Instagram", "https://www.instagram.com/{h}"),
    ("Facebook", "https://www.facebook.com/{h}"),
    ("X", "https://x.com/{h}"),
    ("LinkedIn", "https://www.linkedin.com/company/{h}"),
    ("YouTube", "https://www.youtube.com/@{h}"),
    ("Pinterest", "https://www.pinterest.com/{h}"),
)


def _build_footer(ctx: _Ctx, content: _Content) -> _Footer:
    rng = ctx.rng
    brand = ctx.brand
    token = _token(rng, rng.choice((24, 32, 40)))
    unsub_host = brand.track if (not brand.real and rng.random() < 0.5) else brand.web
    unsubscribe_url = f"https://{unsub_host}" + rng.choice(
        (
            f"/unsubscribe?u={token}",
            f"/email/unsubscribe/{token}",
            f"/preferences/unsubscribe?token={token}",
            f"/u/{token}",
        )
    )
    links: list[_Link] = []
    help_link = _Link(
        ctx.pick("helpc"), ctx.url(rng.choice(("/help", "/support", "/contact", "/hc")), brand.help)
    )
    privacy = _Link(
        ctx.pick("privacy"),
        ctx.url(rng.choice(("/privacy", "/legal/privacy", "/privacy-policy")), brand.web),
    )
    if content.marketing:
        links.append(_Link(ctx.pick("unsub"), unsubscribe_url))
        if rng.random() < 0.7:
            links.append(_Link(ctx.pick("prefs"), f"https://{unsub_host}/preferences?u={token}"))
        if rng.random() < 0.6:
            links.append(privacy)
        if rng.random() < 0.4:
            links.append(help_link)
        rng.shuffle(links)
    else:
        if rng.random() < 0.6:
            links.append(help_link)
        if rng.random() < 0.6:
            links.append(privacy)
        if rng.random() < 0.4:
            links.append(_Link(ctx.pick("account"), ctx.url("/account", brand.account)))
    if rng.random() < 0.3:
        links.append(_Link(brand.web, f"https://{brand.web}/"))
    sentences: list[str] = []
    if content.marketing:
        sentences.extend(ctx.maybe("foot_mk", 0.85))
    else:
        sentences.extend(ctx.maybe("foot_tx", 0.6))
    address = ""
    if brand.address and rng.random() < (0.9 if content.marketing else 0.6):
        address = rng.choice(
            (
                f"{brand.legal} · {brand.address}",
                f"{brand.legal}, {brand.address}",
                f"{brand.legal}\n{brand.address}",
                brand.address,
            )
        )
    rights = ctx.pick("rights")
    holder = brand.legal if not brand.real else brand.name
    copyright_line = rng.choice(
        (
            _tidy(f"© 2026 {holder}. {rights}".strip()),
            f"© {holder} 2026",
            f"Copyright © 2026 {holder}",
            "",
            "",
        )
    )
    socials: list[_Link] = []
    if content.marketing and not brand.real and rng.random() < 0.35:
        for name, pattern in rng.sample(_SOCIAL, k=rng.randint(2, 3)):
            socials.append(_Link(name, pattern.format(h=brand.handle)))
    view_online = None
    if content.marketing and rng.random() < 0.4:
        view_online = _Link(
            ctx.pick("view_online"),
            ctx.url(f"/email/view/{_token(rng, 20)}", brand.track if not brand.real else brand.web),
        )
    return _Footer(links, sentences, address, copyright_line, socials, view_online, unsubscribe_url)


# ----------------------------------------------------------------------------- plain text


def _render_text(ctx: _Ctx, content: _Content, footer: _Footer) -> str:
    rng = ctx.rng
    width = rng.choice((0, 0, 70, 72, 76))

    def para(text: str) -> str:
        return textwrap.fill(text, width) if width else text

    blocks: list[str] = []
    if footer.view_online and rng.random() < 0.5:
        blocks.append(f"{footer.view_online.label}: {footer.view_online.url}")
    if content.headline and rng.random() < 0.4:
        blocks.append(content.headline.upper() if rng.random() < 0.3 else content.headline)
    if content.greeting:
        blocks.append(content.greeting)
    blocks.extend(para(text) for text in content.paragraphs)
    if content.code:
        blocks.append(("    " if rng.random() < 0.5 else "") + content.code)
    if content.quote:
        lines = textwrap.wrap(content.quote, 72)
        blocks.append(
            "\n".join("> " + line for line in lines) if rng.random() < 0.5 else para(content.quote)
        )
    if content.details:
        style = rng.randrange(3)
        if style == 0:
            blocks.append("\n".join(f"{label}: {value}" for label, value in content.details))
        elif style == 1:
            pad = max(len(label) for label, _ in content.details) + 2
            blocks.append(
                "\n".join(f"{label + ':':<{pad}}{value}" for label, value in content.details)
            )
        else:
            blocks.append("\n\n".join(f"{label}\n{value}" for label, value in content.details))
    if content.items:
        style = rng.randrange(3)
        rows: list[str] = []
        for name, qty, price in content.items:
            if style == 0:
                rows.append(f"{qty} x {name}" + (f"  {price}" if price else ""))
            elif style == 1:
                rows.append(
                    f"- {name} ({ctx.label('qty')}: {qty})" + (f" {price}" if price else "")
                )
            else:
                rows.append(
                    f"{name}\n  {ctx.label('qty')} {qty}" + (f" | {price}" if price else "")
                )
        blocks.append("\n".join(rows))
    if content.totals:
        blocks.append("\n".join(f"{label}: {value}" for label, value in content.totals))
    if content.cta:
        style = rng.randrange(4)
        label, url = content.cta.label, content.cta.url
        blocks.append((f"{label}: {url}", f"{label}:\n{url}", f"{label} <{url}>", url)[style])
    for section in content.sections:
        lines = [section.title]
        if section.price:
            lines.append(f"{section.price}  ({section.old_price})")
        if section.text:
            lines.append(para(section.text))
        if section.link:
            lines.append(
                section.link.url
                if rng.random() < 0.5
                else f"{section.link.label}: {section.link.url}"
            )
        blocks.append("\n".join(lines))
    blocks.extend(para(text) for text in content.after)
    if content.closing or content.team:
        blocks.append("\n".join(x for x in (content.closing, content.team) if x))
    foot: list[str] = []
    foot.extend(para(text) for text in footer.sentences)
    link_style = rng.randrange(4)
    for link in footer.links:
        if link.label == ctx.brand.web:
            foot.append(link.url)
        else:
            foot.append(
                (
                    f"{link.label}: {link.url}",
                    f"{link.label} <{link.url}>",
                    f"{link.label}\n{link.url}",
                    f"{link.label} ({link.url})",
                )[link_style]
            )
    if footer.address:
        foot.append(footer.address)
    if footer.copyright:
        foot.append(footer.copyright)
    if foot:
        separator = rng.choice(("--", "-" * 20, "", "____", "* * *"))
        if separator:
            blocks.append(separator)
        blocks.append("\n".join(foot) if rng.random() < 0.5 else "\n\n".join(foot))
    newline_gap = "\n\n" if rng.random() < 0.85 else "\n\n\n"
    return newline_gap.join(blocks) + "\n"


# ----------------------------------------------------------------------------- HTML


@dataclass(frozen=True, slots=True)
class _Skin:
    font: str
    accent: str
    button_text: str
    text: str
    muted: str
    bg: str
    card: str
    width: int
    radius: int
    band: bool
    center: bool
    pad: int
    inner: int
    h_size: int
    size: int
    line: str
    sep: str
    button_table: bool
    footer_outside: bool
    pretty: bool


_FONTS: tuple[str, ...] = (
    "Arial, Helvetica, sans-serif",
    "'Helvetica Neue', Helvetica, Arial, sans-serif",
    "Georgia, 'Times New Roman', serif",
    "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Arial, sans-serif",
    "Verdana, Geneva, sans-serif",
    "Tahoma, Arial, sans-serif",
    "'Trebuchet MS', Arial, sans-serif",
    "Roboto, 'Open Sans', Arial, sans-serif",
)


def _color(rng: random.Random, lightness: tuple[float, float]) -> str:
    red, green, blue = colorsys.hls_to_rgb(
        rng.random(), rng.uniform(*lightness), rng.uniform(0.4, 0.85)
    )
    return f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"


def _skin(rng: random.Random) -> _Skin:
    accent = (
        _color(rng, (0.22, 0.45))
        if rng.random() < 0.85
        else rng.choice(("#000000", "#111111", "#222222"))
    )
    return _Skin(
        font=rng.choice(_FONTS),
        accent=accent,
        button_text=rng.choice(("#ffffff", "#fff", "#FFFFFF")),
        text=rng.choice(("#222222", "#333333", "#1f2933", "#202124", "#2d2d2d", "#111827")),
        muted=rng.choice(("#777777", "#6b7280", "#8a8a8a", "#999999", "#666666")),
        bg=rng.choice(
            ("#f4f4f4", "#ffffff", "#eef1f4", "#f6f3ee", "#f2f4f7", "#fafafa", "#ececec")
        ),
        card=rng.choice(("#ffffff", "#ffffff", "#ffffff", "#fffdf9")),
        width=rng.choice((560, 580, 600, 600, 620, 640, 680)),
        radius=rng.choice((0, 2, 3, 4, 6, 8, 24)),
        band=rng.random() < 0.35,
        center=rng.random() < 0.35,
        pad=rng.choice((0, 12, 16, 24, 32)),
        inner=rng.choice((20, 24, 28, 32, 40)),
        h_size=rng.choice((20, 22, 24, 26, 28)),
        size=rng.choice((14, 15, 15, 16, 16)),
        line=rng.choice(("1.4", "1.5", "1.6", "22px", "24px")),
        sep=rng.choice((" | ", " · ", " &nbsp;|&nbsp; ", " &bull; ", "<br>")),
        button_table=rng.random() < 0.6,
        footer_outside=rng.random() < 0.4,
        pretty=rng.random() < 0.6,
    )


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _a(text: str) -> str:
    return html.escape(text, quote=True)


def _render_html(ctx: _Ctx, content: _Content, footer: _Footer) -> str:
    rng = ctx.rng
    brand = ctx.brand
    s = _skin(rng)
    align = "center" if s.center else "left"
    p_style = f"margin:0 0 16px;font-size:{s.size}px;line-height:{s.line};color:{s.text}"
    out: list[str] = []
    if rng.random() < 0.7:
        out.append("<!DOCTYPE html>")
    out.append(f'<html lang="{ctx.lang}">' if rng.random() < 0.6 else "<html>")
    out.append("<head>")
    out.append(
        rng.choice(
            (
                '<meta charset="utf-8">',
                '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">',
            )
        )
    )
    if rng.random() < 0.7:
        out.append('<meta name="viewport" content="width=device-width, initial-scale=1">')
    if rng.random() < 0.5:
        out.append(f"<title>{_e(content.subject)}</title>")
    if rng.random() < 0.5:
        out.append(
            f"<style>body{{margin:0;padding:0}}a{{color:{s.accent}}}"
            f"@media only screen and (max-width:{s.width}px){{.container{{width:100% "
            "!important}.px{padding-left:16px !important;padding-right:16px !important}}"
            "</style>"
        )
    out.append("</head>")
    out.append(f'<body style="margin:0;padding:0;background-color:{s.bg};">')
    if content.preheader:
        out.append(
            '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;">'
            f"{_e(content.preheader)}</div>"
        )
    out.append(
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        f'border="0" style="background-color:{s.bg};"><tr><td align="center" '
        f'style="padding:{s.pad}px 8px;">'
    )
    if footer.view_online:
        out.append(
            f'<p style="margin:0 0 8px;font-family:{_a(s.font)};font-size:11px;'
            f'color:{s.muted};text-align:center;"><a href="{_a(footer.view_online.url)}" '
            f'style="color:{s.muted};">{_e(footer.view_online.label)}</a></p>'
        )
    border = (
        f"border:1px solid {rng.choice(('#e5e5e5', '#dddddd', '#e6e8eb'))};"
        if (rng.random() < 0.3)
        else ""
    )
    out.append(
        f'<table role="presentation" class="container" width="{s.width}" cellpadding="0" '
        f'cellspacing="0" border="0" style="width:{s.width}px;max-width:100%;'
        f"background-color:{s.card};{border}border-radius:{min(s.radius, 8)}px;"
        f'font-family:{_a(s.font)};">'
    )
    out.extend(_html_header(ctx, s))
    if content.nav:
        navs = (
            s.sep.join(
                f'<a href="{_a(link.url)}" style="color:{s.text};text-decoration:none;">'
                f"{_e(link.label)}</a>"
                for link in content.nav
            )
            if "<br>" not in s.sep
            else " &nbsp; ".join(
                f'<a href="{_a(link.url)}" style="color:{s.text};'
                f'text-decoration:none;">{_e(link.label)}</a>'
                for link in content.nav
            )
        )
        out.append(
            f'<tr><td style="padding:10px {s.inner}px;font-size:13px;text-align:center;'
            f'border-bottom:1px solid #eeeeee;">{navs}</td></tr>'
        )
    out.append(
        f'<tr><td class="px" style="padding:{s.inner}px {s.inner}px 8px;text-align:{align};">'
    )
    if content.headline:
        out.append(
            f'<h1 style="margin:0 0 16px;font-size:{s.h_size}px;line-height:1.25;'
            f'color:{s.text};font-weight:{rng.choice(("bold", "600", "700"))};">'
            f"{_e(content.headline)}</h1>"
        )
    if content.greeting:
        out.append(f'<p style="{p_style}">{_e(content.greeting)}</p>')
    for text in content.paragraphs:
        out.append(f'<p style="{p_style}">{_e(text)}</p>')
    if content.code:
        out.append(
            f'<p style="margin:8px 0 20px;font-size:28px;letter-spacing:6px;'
            f'font-weight:bold;color:{s.text};font-family:Menlo,Consolas,monospace;">'
            f"{_e(content.code)}</p>"
        )
    if content.quote:
        out.append(
            f'<blockquote style="margin:0 0 16px;padding:8px 16px;border-left:3px solid '
            f'{s.accent};color:{s.text};font-size:{s.size}px;line-height:{s.line};">'
            f"{_e(content.quote)}</blockquote>"
        )
    if content.details:
        out.append(_html_details(rng, s, content.details))
    if content.items:
        out.append(_html_items(ctx, s, content))
    if content.totals:
        rows = "".join(
            f'<tr><td style="padding:4px 0;color:{s.muted};font-size:14px;">{_e(label)}</td>'
            f'<td align="right" style="padding:4px 0;font-size:14px;color:{s.text};'
            f'{"font-weight:bold;" if index == len(content.totals) - 1 else ""}">{_e(value)}</td>'
            "</tr>"
            for index, (label, value) in enumerate(content.totals)
        )
        out.append(
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            f'style="margin:0 0 20px;border-top:1px solid #eeeeee;">{rows}</table>'
        )
    if content.cta:
        out.append(_html_button(s, content.cta))
    for section in content.sections:
        out.append(_html_section(rng, s, section, p_style))
    for text in content.after:
        out.append(f'<p style="{p_style}">{_e(text)}</p>')
    if content.closing or content.team:
        lines = "<br>".join(_e(x) for x in (content.closing, content.team) if x)
        out.append(f'<p style="{p_style}">{lines}</p>')
    out.append("</td></tr>")
    footer_html = _html_footer(ctx, s, footer)
    if s.footer_outside:
        out.append("</table>")
        out.append(
            f'<table role="presentation" width="{s.width}" cellpadding="0" cellspacing="0" '
            f'border="0" style="width:{s.width}px;max-width:100%;font-family:'
            f'{_a(s.font)};">{footer_html}</table>'
        )
    else:
        out.append(footer_html)
        out.append("</table>")
    out.append("</td></tr></table>")
    if rng.random() < 0.3 and not brand.real:
        out.append(
            f'<img src="https://{brand.track}/o/{_token(rng, 32)}.gif" width="1" height="1" '
            'alt="" style="display:block;border:0;">'
        )
    out.append("</body>")
    out.append("</html>")
    return ("\n" if s.pretty else "").join(out) + "\n"


def _html_header(ctx: _Ctx, s: _Skin) -> list[str]:
    rng = ctx.rng
    brand = ctx.brand
    path = rng.choice(
        (
            "/email/logo.png",
            "/assets/img/logo@2x.png",
            "/static/brand/logo.png",
            "/images/email/header-logo.gif",
            f"/email/{_slug(brand.name)}-logo.png",
            "/img/logo-email.png",
        )
    )
    width = rng.choice((100, 120, 140, 160, 180))
    margin = "margin:0 auto;" if s.center or rng.random() < 0.4 else ""
    logo = (
        f'<img src="{_a(ctx.image(path))}" alt="{_a(brand.name)}" width="{width}" '
        f'style="display:block;border:0;{margin}height:auto;">'
    )
    if rng.random() < 0.6:
        logo = f'<a href="{_a(ctx.url("/", brand.web))}">{logo}</a>'
    background = s.accent if s.band else s.card
    center = "center" if margin else "left"
    return [
        f'<tr><td align="{center}" style="padding:20px {s.inner}px;background-color:'
        f'{background};">{logo}</td></tr>'
    ]


def _html_details(rng: random.Random, s: _Skin, details: list[tuple[str, str]]) -> str:
    style = rng.randrange(3)
    rows: list[str] = []
    for label, value in details:
        value_html = _e(value).replace("\n", "<br>")
        if style == 0:
            rows.append(
                f'<tr><td style="padding:6px 0;color:{s.muted};font-size:13px;'
                f'width:40%;vertical-align:top;">{_e(label)}</td><td style="padding:6px 0;'
                f'font-size:14px;color:{s.text};">{value_html}</td></tr>'
            )
        elif style == 1:
            rows.append(
                f'<tr><td style="padding:8px 0;border-bottom:1px solid #eeeeee;">'
                f'<span style="display:block;font-size:12px;color:{s.muted};'
                f'text-transform:uppercase;">{_e(label)}</span><span style="font-size:'
                f'15px;color:{s.text};">{value_html}</span></td></tr>'
            )
        else:
            rows.append(
                f'<tr><td style="padding:4px 12px 4px 0;font-size:14px;color:{s.text};">'
                f"<strong>{_e(label)}:</strong> {value_html}</td></tr>"
            )
    background = rng.choice(
        ("", "", f"background-color:{rng.choice(('#f7f7f7', '#f5f7fa'))};padding:12px;")
    )
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        f'style="margin:0 0 20px;border-collapse:collapse;{background}">{"".join(rows)}</table>'
    )


def _html_items(ctx: _Ctx, s: _Skin, content: _Content) -> str:
    rng = ctx.rng
    thumbs = rng.random() < 0.4
    head_item, head_qty, head_price = content.item_header
    header = ""
    if rng.random() < 0.6:
        header = (
            f'<tr><th align="left" style="padding:6px 0;font-size:12px;color:{s.muted};'
            f'border-bottom:1px solid #e5e5e5;">{_e(head_item)}</th><th align="center" '
            f'style="padding:6px 0;font-size:12px;color:{s.muted};border-bottom:1px solid '
            f'#e5e5e5;">{_e(head_qty)}</th><th align="right" style="padding:6px 0;'
            f'font-size:12px;color:{s.muted};border-bottom:1px solid #e5e5e5;">'
            f"{_e(head_price)}</th></tr>"
        )
    rows: list[str] = []
    for name, qty, price in content.items:
        thumb = ""
        if thumbs:
            src = ctx.image(f"/products/{_token(rng, 8)}/{_slug(name)[:30]}_thumb.jpg")
            thumb = (
                f'<img src="{_a(src)}" alt="" width="56" height="56" style="display:inline-'
                'block;vertical-align:middle;border:0;margin-right:10px;">'
            )
        rows.append(
            f'<tr><td style="padding:10px 0;font-size:14px;color:{s.text};">{thumb}'
            f'{_e(name)}</td><td align="center" style="padding:10px 0;font-size:14px;'
            f'color:{s.text};">{qty}</td><td align="right" style="padding:10px 0;'
            f'font-size:14px;color:{s.text};">{_e(price)}</td></tr>'
        )
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        f'style="margin:0 0 12px;border-collapse:collapse;">{header}{"".join(rows)}</table>'
    )


def _html_button(s: _Skin, link: _Link) -> str:
    if s.button_table:
        return (
            '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
            f'style="margin:8px {"auto" if s.center else "0"} 24px;"><tr><td '
            f'style="background-color:{s.accent};border-radius:{s.radius}px;" '
            f'bgcolor="{s.accent}"><a href="{_a(link.url)}" style="display:inline-block;'
            f"padding:12px 28px;font-size:15px;color:{s.button_text};text-decoration:none;"
            f'font-weight:bold;">{_e(link.label)}</a></td></tr></table>'
        )
    return (
        f'<p style="margin:8px 0 24px;text-align:{"center" if s.center else "left"};">'
        f'<a href="{_a(link.url)}" style="background-color:{s.accent};color:{s.button_text};'
        f"display:inline-block;padding:12px 24px;border-radius:{s.radius}px;"
        f'text-decoration:none;font-weight:600;">{_e(link.label)}</a></p>'
    )


def _html_section(rng: random.Random, s: _Skin, section: _Section, p_style: str) -> str:
    parts: list[str] = [
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="margin:0 0 24px;"><tr><td>'
    ]
    if section.image:
        image = (
            f'<img src="{_a(section.image)}" alt="{_a(section.title)}" width="100%" '
            'style="display:block;border:0;max-width:100%;height:auto;margin:0 0 12px;">'
        )
        if section.link:
            image = f'<a href="{_a(section.link.url)}">{image}</a>'
        parts.append(image)
    title = _e(section.title)
    if section.link and section.link.label == section.title:
        title = (
            f'<a href="{_a(section.link.url)}" style="color:{s.text};text-decoration:none;">'
            f"{title}</a>"
        )
    parts.append(
        f'<h2 style="margin:0 0 8px;font-size:{s.size + 3}px;color:{s.text};">{title}</h2>'
    )
    if section.price:
        parts.append(
            f'<p style="margin:0 0 8px;font-size:{s.size}px;color:{s.text};">'
            f"<strong>{_e(section.price)}</strong> "
            f'<span style="text-decoration:line-through;color:{s.muted};">'
            f"{_e(section.old_price)}</span></p>"
        )
    if section.text:
        parts.append(f'<p style="{p_style}">{_e(section.text)}</p>')
    if section.link and section.link.label != section.title:
        parts.append(
            f'<p style="margin:0;"><a href="{_a(section.link.url)}" style="color:'
            f'{s.accent};font-weight:bold;text-decoration:{rng.choice(("none", "underline"))};">'
            f"{_e(section.link.label)}</a></p>"
        )
    parts.append("</td></tr></table>")
    return "".join(parts)


def _html_footer(ctx: _Ctx, s: _Skin, footer: _Footer) -> str:
    align = "center" if s.center or ctx.rng.random() < 0.5 else "left"
    parts: list[str] = [
        f'<tr><td style="padding:20px {s.inner}px 28px;font-size:12px;'
        f'line-height:1.5;color:{s.muted};text-align:{align};">'
    ]
    if footer.socials:
        icons = " ".join(
            f'<a href="{_a(link.url)}" style="text-decoration:none;"><img src="'
            f'{_a(ctx.image("/email/icons/" + _slug(link.label) + ".png"))}" '
            f'alt="{_a(link.label)}" '
            'width="24" height="24" style="border:0;display:inline-block;"></a>'
            for link in footer.socials
        )
        parts.append(f'<p style="margin:0 0 12px;">{icons}</p>')
    if footer.links:
        links = s.sep.join(
            f'<a href="{_a(link.url)}" style="color:{s.muted};'
            f'text-decoration:underline;">{_e(link.label)}</a>'
            for link in footer.links
        )
        parts.append(f'<p style="margin:0 0 10px;">{links}</p>')
    for sentence in footer.sentences:
        parts.append(f'<p style="margin:0 0 10px;">{_e(sentence)}</p>')
    if footer.address:
        parts.append(
            f'<p style="margin:0 0 10px;">{_e(footer.address).replace(chr(10), "<br>")}</p>'
        )
    if footer.copyright:
        parts.append(f'<p style="margin:0;">{_e(footer.copyright)}</p>')
    parts.append("</td></tr>")
    return "".join(parts)


# ----------------------------------------------------------------------------- assembly

_NOTICE_GENRES = frozenset(
    {
        "password_reset",
        "signin_alert",
        "statement_ready",
        "support_ticket",
        "shipping_update",
        "reminder",
        "subscription_renewal",
    }
)
_MARKETING_SUBDOMAINS: tuple[str, ...] = ("news", "email", "e", "mail", "info")
_NOTICE_SUBDOMAINS: tuple[str, ...] = ("mail", "email", "notifications", "e", "account")
_PROCESSOR_SENDERS: dict[str, tuple[str, ...]] = {
    "stripe.com": ("receipts+{t}@stripe.com", "invoice+statements+{t}@stripe.com"),
    "paddle.com": ("receipts@paddle.com", "help@paddle.com"),
    "squareup.com": ("receipts@messaging.squareup.com", "noreply@messaging.squareup.com"),
}


def _finish(ctx: _Ctx, content: _Content) -> str:
    """Greeting, help line, sign-off and preheader; returns the From local part."""
    rng = ctx.rng
    local = rng.choice(content.local_parts or _LOCAL_PARTS[ctx.genre])
    if rng.random() < 0.85:
        content.greeting = ctx.pick("greet")
    if rng.random() < 0.45 and ctx.genre not in ("newsletter", "promotion"):
        no_reply = "reply" in local or ctx.brand.real
        content.after.append(ctx.pick("help_noreply" if no_reply else "help"))
    if rng.random() < 0.75 or ctx.genre == "support_ticket":
        content.closing = ctx.pick("closing")
        # Big brands sign as the brand or its team, not as a named person.
        content.team = (
            _pick_avoiding(ctx, "team", "{agent}") if ctx.brand.real else ctx.pick("team")
        )
    if rng.random() < 0.35 and content.paragraphs:
        content.preheader = content.paragraphs[0]
    if (
        ctx.lang == "en"
        and not content.marketing
        and rng.random() < 0.04
        and ctx.brand.name not in content.subject
    ):
        content.subject = f"[{ctx.brand.name}] {content.subject}"
    return local


def _message_id(ctx: _Ctx, host: str) -> str:
    rng = ctx.rng
    style = rng.randrange(5)
    stamp = ctx.sent.strftime("%Y%m%d%H%M%S")
    if style == 0:
        left = _token(rng, 32, _HEX)
    elif style == 1:
        left = f"{stamp}.{_digits(rng, 6)}.{_token(rng, 10, _UPPER_DIGITS)}"
    elif style == 2:
        left = "-".join(_token(rng, n, _HEX) for n in (8, 4, 4, 4, 12))
    elif style == 3:
        left = f"{_token(rng, 16, _ALNUM)}.{stamp}"
    else:
        left = f"{stamp}{_digits(rng, 4)}.{_token(rng, 12, _HEX)}"
    if host == ctx.brand.domain or ctx.brand.domain in host:
        host = rng.choice(
            (
                host,
                host,
                f"mail.{ctx.brand.domain}",
                f"mta.{ctx.brand.domain}",
                f"smtp.{ctx.brand.domain}",
            )
        )
    return f"<{left}@{host}>"


def _assemble(ctx: _Ctx, content: _Content) -> tuple[bytes, str]:
    rng = ctx.rng
    brand = ctx.brand
    local = _finish(ctx, content)
    footer = _build_footer(ctx, content)
    # From
    if brand.real:
        display = brand.name
        from_host = brand.domain
    else:
        roll = rng.random()
        if roll < 0.6:
            display = brand.name
        elif roll < 0.85:
            display = f"{brand.name} {ctx.pick('dept')}"
        else:
            display = (
                f"{ctx.agent} at {brand.name}"
                if ctx.lang == "en"
                else f"{ctx.agent} | {brand.name}"
            )
        sub = rng.random() < (0.4 if content.marketing else 0.2)
        from_host = (
            f"{rng.choice(_MARKETING_SUBDOMAINS if content.marketing else _NOTICE_SUBDOMAINS)}"
            f".{brand.domain}"
            if sub
            else brand.domain
        )
    from_address = f"{local}@{from_host}"
    sender_domain = brand.domain
    if ctx.processor and rng.random() < 0.5:
        from_address = rng.choice(_PROCESSOR_SENDERS[ctx.processor]).format(
            t=_token(rng, 16, "abcdefghijklmnopqrstuvwxyz0123456789")
        )
        from_host = from_address.rpartition("@")[2]
        sender_domain = ctx.processor
        display = brand.name
    msg = EmailMessage(policy=_POLICY)
    to_value = (
        ctx.email if rng.random() < 0.55 else formataddr((f"{ctx.first} {ctx.last}", ctx.email))
    )
    headers: list[tuple[str, str]] = [
        ("From", formataddr((display, from_address))),
        ("To", to_value),
        ("Subject", content.subject),
        ("Date", format_datetime(ctx.sent)),
        ("Message-ID", _message_id(ctx, from_host)),
        ("MIME-Version", "1.0"),
    ]
    order = rng.randrange(3)
    if order == 1:
        headers = [headers[3], headers[0], headers[1], headers[4], headers[2], headers[5]]
    elif order == 2:
        headers = [headers[5], headers[4], headers[3], headers[2], headers[0], headers[1]]
    for name, value in headers:
        _set_header(msg, name, value)
    if content.reply_to:
        _set_header(msg, "Reply-To", content.reply_to)
    elif content.marketing and rng.random() < 0.2:
        _set_header(msg, "Reply-To", f"hello@{brand.domain}")
    if content.marketing and rng.random() < 0.85:
        mailto = f"<mailto:unsubscribe-{_token(rng, 12, _HEX)}@{brand.domain}?subject=unsubscribe>"
        https = f"<{footer.unsubscribe_url}>"
        choice = rng.randrange(3)
        _set_header(
            msg, "List-Unsubscribe", (f"{https}, {mailto}", https, f"{mailto}, {https}")[choice]
        )
        if rng.random() < 0.7:
            _set_header(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        if rng.random() < 0.2:
            _set_header(msg, "List-ID", f"{brand.name} <{_slug(ctx.genre)}.{brand.domain}>")
    elif not content.marketing and rng.random() < 0.1:
        _set_header(msg, "Auto-Submitted", "auto-generated")
    if rng.random() < (0.15 if ctx.lang != "en" else 0.04):
        _set_header(msg, "Content-Language", ctx.lang)
    # body
    roll = rng.random()
    if ctx.genre in ("newsletter", "promotion"):
        mode = "html" if roll < 0.3 else "alternative"
    elif ctx.genre in _NOTICE_GENRES:
        mode = "text" if roll < 0.22 else "alternative"
    else:
        mode = "text" if roll < 0.06 else "alternative"
    if mode == "text" and content.preheader:
        content.preheader = ""
    html_cte = rng.choice(("quoted-printable", "quoted-printable", "base64"))
    if mode == "html":
        msg.set_content(_render_html(ctx, content, footer), subtype="html", cte=html_cte)
    else:
        text = _render_text(ctx, content, footer)
        text_cte = (
            "quoted-printable"
            if (not text.isascii() or max(map(len, text.splitlines())) > 76)
            else "7bit"
        )
        if text_cte == "quoted-printable" and rng.random() < 0.25:
            text_cte = "base64"
        msg.set_content(text, cte=text_cte)
        if mode == "alternative":
            msg.add_alternative(_render_html(ctx, content, footer), subtype="html", cte=html_cte)
            for part in msg.iter_parts():
                del part["MIME-Version"]
            msg.set_boundary(_boundary(rng))  # the stdlib would draw it from the global random
    return msg.as_bytes(), sender_domain


def _set_header(msg: EmailMessage, name: str, value: str) -> None:
    """Store a short ASCII value as is (what the policy would write anyway, without parsing it
    twice); anything else goes through the policy, which encodes and folds it."""
    if value.isascii() and len(name) + len(value) + 2 <= 76 and "\n" not in value:
        msg.set_raw(name, value)
    else:
        msg[name] = value


def _boundary(rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return f"===============_{_digits(rng, 19)}=="
    if style == 1:
        return f"----=_Part_{rng.randint(1000, 99999)}_{_digits(rng, 9)}.{_digits(rng, 13)}"
    if style == 2:
        return f"=_b1_{_token(rng, 32, _HEX)}"
    return f"--==_mimepart_{_token(rng, 13, _HEX)}_{rng.randint(10000, 99999)}"


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new header class on every lookup; build each one once."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._cache.get(key)
        if cls is None:
            cls = self._cache[key] = super().__getitem__(name)
        return cls


# policy.SMTP (CRLF, RFC 2047 encoded words, line folding) with the faster header registry.
_POLICY = SMTP.clone(header_factory=_CachingHeaderRegistry())


def _generate(rng: random.Random, genre: str, index: int) -> SyntheticMessage:
    lang = rng.choices(LANGUAGES, weights=_LANGUAGE_WEIGHTS)[0]
    brand: _Brand | None = None
    if rng.random() < 0.12:
        brand = _real_brand(rng, genre, lang)
    if brand is None:
        brand = _fictitious_brand(rng, genre, lang)
    ctx = _Ctx(rng, genre, lang, brand)
    content = _BUILDERS[genre](ctx)
    raw, sender_domain = _assemble(ctx, content)
    return SyntheticMessage(
        genre=genre,
        language=lang,
        sender_domain=sender_domain,
        brand_domain=brand.domain,
        processor=ctx.processor,
        real_brand=brand.real,
        raw=raw,
    )
