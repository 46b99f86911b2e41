"""People and contact data: names (Faker), dates of birth, addresses, cities, phones, e-mail, network ids.

Names come from Faker in the text's locale; titles ("Dr.", "Mme", "Herr") and post-nominals ("PhD",
"B.Sc.") are written around the name and stay out of the labelled span.  Phone numbers are built
from real numbering plans (area codes, mobile prefixes), not from Faker's, which uses US area codes
libphonenumber rejects.  Cities are real ones: Faker's fr_FR and en_US cities are made of surnames
("Briand-sur-Mer", "North Kaylee").
"""

from __future__ import annotations

import unicodedata

from bench.compliance.values import UPPER, Ctx, Piece, digits, labelled, whole

_TITLES = {"fr_FR": ("M.", "Mme", "Dr", "Pr", "Me", "Monsieur", "Madame"),
           "en_US": ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof."), "en_GB": ("Mr", "Mrs", "Ms", "Dr", "Prof"),
           "de_DE": ("Herr", "Frau", "Dr.", "Prof. Dr.", "Herr Dr.", "Frau Dr.")}
_SUFFIXES = {"en_US": (", MD", " MD", ", PhD", " Jr.", ", DDS", " III"), "en_GB": (" MBE", ", PhD", " QC"),
             "de_DE": (" B.Sc.", " M.A.", " MBA"), "fr_FR": ()}


_PARTICLES = frozenset({"van", "von", "der", "den", "de", "da", "di", "du", "des", "del", "la", "le", "dos", "zu"})


def given_name(ctx: Ctx) -> str:
    """Faker's given name, without its abbreviated forms ("H.-Dieter"): where a name ends is then clear."""
    while True:
        name = ctx.fake.first_name()
        if "." not in name:
            return name


def surname(ctx: Ctx) -> str:
    """Faker's surname, without the few de_DE entries that are no names ("auch Schlauchin", "Dussen van",
    "Koch II"): a lowercase word must be a nobiliary particle and come first."""
    while True:
        name = ctx.fake.last_name()
        words = name.split()
        if all(w[0].isupper() or (w in _PARTICLES and i < len(words) - 1) for i, w in enumerate(words)) and \
                words[-1] not in ("II", "III"):
            return name


def single_surname(ctx: Ctx) -> str:
    """A one-word surname, to make a street of ("Schmidtstraße", "rue Lemoine", "Walker Road")."""
    while True:
        name = surname(ctx)
        if " " not in name and "-" not in name:
            return name


def full_name(ctx: Ctx) -> str:
    first = given_name(ctx)
    if ctx.rng.random() < 0.08:  # a middle name or initial
        first += " " + (given_name(ctx) if ctx.locale != "en_US" else given_name(ctx)[0] + ".")
    return f"{first} {surname(ctx)}"


def person(ctx: Ctx) -> Piece:
    """A full name, sometimes with a title before or a post-nominal after (outside the label)."""
    rng = ctx.rng
    name = full_name(ctx)
    style = rng.random()
    if style < 0.2:
        return labelled(rng.choice(_TITLES[ctx.locale]) + " ", name, "", "PERSON")
    if style < 0.27 and _SUFFIXES[ctx.locale]:
        return labelled("", name, rng.choice(_SUFFIXES[ctx.locale]), "PERSON")
    if style < 0.33 and ctx.locale == "fr_FR":  # the administrative style: DUPONT Marie
        return whole(f"{surname(ctx).upper()} {given_name(ctx)}", "PERSON")
    return whole(name, "PERSON")


def person_plain(ctx: Ctx) -> Piece:
    return whole(full_name(ctx), "PERSON")


def person_titled_surname(ctx: Ctx) -> Piece:
    """"Mme Lefèvre", "Mr. Fowler", "Herr Krause": a title and the surname alone."""
    title = ctx.rng.choice(_TITLES[ctx.locale][:4])
    return labelled(title + " ", surname(ctx), "", "PERSON")


def first_name(ctx: Ctx) -> Piece:
    return whole(given_name(ctx), "PERSON")


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c in ".-")


_COMPANY_DOMAINS = {"fr_FR": ("banque-lyonnaise.fr", "acme-conseil.fr", "mairie-exemple.fr", "chu-exemple.fr"),
                    "de_DE": ("musterbank.de", "beispiel-gmbh.de", "klinikum-beispiel.de"),
                    "en_GB": ("example.co.uk", "nhs-trust.example.uk", "acme-ltd.co.uk"),
                    "en_US": ("example.com", "acme-corp.com", "mercy-health.example.org")}


def email(ctx: Ctx) -> Piece:
    rng = ctx.rng
    first, last = _ascii(ctx.fake.first_name()), _ascii(ctx.fake.last_name())
    style = rng.random()
    user = (f"{first}.{last}" if style < 0.4 else f"{first[0]}{last}" if style < 0.6 else
            f"{first}{last}{rng.randint(1, 99)}" if style < 0.75 else _ascii(ctx.fake.user_name()))
    domain = ctx.fake.free_email_domain() if rng.random() < 0.6 else rng.choice(_COMPANY_DOMAINS[ctx.locale])
    return whole(f"{user}@{domain}", "EMAIL")


# --- phone numbers: real numbering plans --------------------------------------------------------

_US_AREAS = ("212", "213", "305", "312", "415", "503", "512", "602", "617", "646", "702", "713", "718", "773", "808",
             "818", "917", "202", "206", "303", "404", "469", "480", "510", "571", "614", "650", "678", "704", "720",
             "727", "786", "832", "860", "919", "929", "949", "972")


# Overseas departments share the 0 + 9 digit plan but are other regions (Réunion, Guadeloupe, Mayotte...).
_FR_OVERSEAS = frozenset({"262", "263", "269", "590", "594", "596", "597", "639", "690", "691", "692", "693", "694",
                          "696", "697"})


def _us_exchange(ctx: Ctx) -> str:
    while True:
        exchange = digits(ctx.rng, 3, "23456789")
        if exchange[1:] != "11" and exchange != "555":
            return exchange


def phone_value(ctx: Ctx) -> str:
    rng = ctx.rng
    style = rng.random()
    if ctx.locale == "fr_FR":
        while True:
            lead = rng.choice(("6", "6", "7", "1", "2", "3", "4", "5"))
            rest = (rng.choice("3456789") + digits(rng, 7)) if lead == "7" else \
                (rng.choice("123456789") + digits(rng, 7)) if lead == "4" else digits(rng, 8)
            if lead + rest[:2] not in _FR_OVERSEAS:
                break
        pairs = " ".join(rest[i:i + 2] for i in range(0, 8, 2))
        if style < 0.5:
            return f"0{lead} {pairs}"
        if style < 0.65:
            return f"0{lead}.{pairs.replace(' ', '.')}"
        if style < 0.85:
            return f"+33 {lead} {pairs}"
        return f"+33 (0){lead} {pairs}" if style < 0.92 else f"0{lead}{rest}"
    if ctx.locale == "de_DE":
        if rng.random() < 0.45:
            prefix = rng.choice(("151", "152", "157", "160", "162", "170", "171", "172", "173", "174", "175", "176"))
            number = digits(rng, 8 if prefix.startswith("15") else 7)
        else:
            prefix = rng.choice(("30", "40", "89", "69", "221", "211", "711", "341", "351"))
            number = digits(rng, 8 - len(prefix) + 2, "23456789")
        if style < 0.45:
            return f"0{prefix} {number}"
        if style < 0.6:
            return f"0{prefix}/{number}"
        if style < 0.85:
            return f"+49 {prefix} {number}"
        return f"+49 (0){prefix} {number}"
    if ctx.locale == "en_GB":
        if rng.random() < 0.45:
            national = "7" + rng.choice("4589") + digits(rng, 8, "2345678")
            spaced = f"{national[:4]} {national[4:]}"
        elif rng.random() < 0.5:
            national = "20" + rng.choice("378") + digits(rng, 7)
            spaced = f"{national[:2]} {national[2:6]} {national[6:]}"
        else:
            national = rng.choice(("161", "113", "117", "121", "131", "141", "151")) + digits(rng, 7, "234")
            spaced = f"{national[:3]} {national[3:6]} {national[6:]}"
        return f"0{spaced}" if style < 0.65 else f"+44 {spaced}" if style < 0.9 else f"+44 (0){spaced}"
    area, exchange, line = rng.choice(_US_AREAS), _us_exchange(ctx), digits(rng, 4)
    if style < 0.35:
        return f"({area}) {exchange}-{line}"
    if style < 0.6:
        return f"{area}-{exchange}-{line}"
    if style < 0.72:
        return f"{area}.{exchange}.{line}"
    if style < 0.9:
        return f"+1 {area} {exchange} {line}"
    return f"1-{area}-{exchange}-{line}"


def phone(ctx: Ctx) -> Piece:
    return whole(phone_value(ctx), "PHONE")


# --- addresses and places -----------------------------------------------------------------------

CITIES = {
    "fr_FR": ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Strasbourg", "Bordeaux", "Lille", "Rennes",
              "Grenoble", "Montpellier", "Dijon", "Angers", "Reims", "Le Havre", "Saint-Étienne", "Clermont-Ferrand",
              "Rouen", "Metz", "Besançon", "Perpignan", "Orléans", "Caen", "Brest", "Limoges", "Amiens"),
    "de_DE": ("Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf", "Leipzig",
              "Dortmund", "Essen", "Bremen", "Dresden", "Hannover", "Nürnberg", "Duisburg", "Bochum", "Wuppertal",
              "Bielefeld", "Bonn", "Münster", "Mannheim", "Karlsruhe", "Augsburg", "Wiesbaden", "Freiburg"),
    "en_GB": ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Sheffield", "Bristol", "Edinburgh",
              "Liverpool", "Cardiff", "Leicester", "Coventry", "Nottingham", "Newcastle upon Tyne", "Brighton",
              "Southampton", "Belfast", "Oxford", "Cambridge", "York", "Norwich", "Exeter", "Aberdeen", "Bath"),
    "en_US": ("Boston", "Chicago", "Denver", "Seattle", "Houston", "Phoenix", "Philadelphia", "San Antonio",
              "San Diego", "Dallas", "Austin", "Columbus", "Charlotte", "Indianapolis", "Portland", "Nashville",
              "Baltimore", "Milwaukee", "Albuquerque", "Tucson", "Sacramento", "Atlanta", "Miami", "Minneapolis",
              "Pittsburgh", "Cincinnati", "New York", "Los Angeles"),
}
_US_STATES = ("MA", "IL", "CO", "WA", "TX", "AZ", "PA", "CA", "OH", "NC", "IN", "OR", "TN", "MD", "WI", "NM", "GA",
              "FL", "MN", "NY")


def location(ctx: Ctx) -> Piece:
    return whole(ctx.rng.choice(CITIES[ctx.locale]), "LOCATION")


_FR_STREETS = ("rue", "rue", "rue", "avenue", "boulevard", "place", "allée", "impasse", "chemin", "quai", "route")
_FR_NAMES = ("de la République", "Victor Hugo", "Jean Jaurès", "des Lilas", "du Général Leclerc", "de Paris",
             "Pasteur", "Gambetta", "des Écoles", "de la Gare", "Émile Zola", "du Moulin", "Foch", "Nationale",
             "Sainte-Catherine", "des Tilleuls", "du Château", "de Verdun", "Carnot", "de la Liberté")
_EN_STREETS = ("Street", "Street", "Avenue", "Road", "Drive", "Lane", "Boulevard", "Court", "Place", "Way")
_GB_STREETS = ("Road", "Road", "Street", "Lane", "Close", "Avenue", "Gardens", "Crescent", "Drive", "Grove", "Terrace")
_EN_NAMES = ("Oak", "Maple", "Washington", "Lincoln", "Main", "Park", "Cedar", "Elm", "Sunset", "Highland", "Church",
             "Victoria", "Station", "Mill", "King", "Queen", "Albert", "Chestnut", "Willow", "Green", "Hill", "Lake")
_DE_NAMES = ("Goethe", "Schiller", "Bahnhof", "Haupt", "Kirch", "Linden", "Garten", "Berg", "Mozart", "Wald",
             "Schul", "Post", "Markt", "Friedrich", "Beethoven", "Rosen", "Blumen", "Park", "Kant", "Luisen")
_DE_ADJ = ("Berliner", "Lange", "Hamburger", "Alte", "Neue", "Breite", "Kölner", "Frankfurter", "Hohe")


def street_value(ctx: Ctx) -> str:
    rng = ctx.rng
    if ctx.locale == "fr_FR":
        number = str(rng.randint(1, 180)) + (rng.choice((" bis", " ter")) if rng.random() < 0.08 else "")
        name = rng.choice(_FR_NAMES) if rng.random() < 0.7 else single_surname(ctx)
        return f"{number}{',' if rng.random() < 0.25 else ''} {rng.choice(_FR_STREETS)} {name}"
    if ctx.locale == "de_DE":
        number = f"{rng.randint(1, 160)}{rng.choice('ab') if rng.random() < 0.1 else ''}"
        style = rng.random()
        if style < 0.55:
            base = rng.choice(_DE_NAMES) if rng.random() < 0.7 else single_surname(ctx)
            return f"{base}{rng.choice(('straße', 'straße', 'str.', 'weg', 'platz', 'allee', 'gasse'))} {number}"
        if style < 0.8:
            return f"{rng.choice(_DE_ADJ)} Straße {number}"
        return f"{single_surname(ctx)}{rng.choice(('straße', 'weg'))} {number}"
    names = _EN_NAMES if rng.random() < 0.6 else (single_surname(ctx),)
    kinds = _GB_STREETS if ctx.locale == "en_GB" else _EN_STREETS
    return f"{rng.randint(1, 9999 if ctx.locale == 'en_US' else 250)} {rng.choice(names)} {rng.choice(kinds)}"


def street_address(ctx: Ctx) -> Piece:
    return whole(street_value(ctx), "STREET_ADDRESS")


def postal_address(ctx: Ctx) -> Piece:
    """Street, postcode and city: the street and the city are labelled, the postcode is not a type."""
    rng = ctx.rng
    street = street_value(ctx)
    city = rng.choice(CITIES[ctx.locale])
    if ctx.locale in ("fr_FR", "de_DE"):
        middle = f", {digits(rng, 5, '123456789')} "
        tail = ""
    elif ctx.locale == "en_GB":
        middle = ", "
        tail = f" {rng.choice(UPPER)}{rng.choice(UPPER)}{rng.randint(1, 20)} {rng.randint(1, 9)}" \
               f"{rng.choice(UPPER)}{rng.choice(UPPER)}"
    else:
        middle = ", "
        tail = f", {rng.choice(_US_STATES)} {digits(rng, 5, '123456789')}"
    text = street + middle + city + tail
    city_start = len(street) + len(middle)
    return Piece(text, ((0, len(street), "STREET_ADDRESS"), (city_start, city_start + len(city), "LOCATION")))


# --- dates of birth -----------------------------------------------------------------------------

_MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre",
           "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
           "Dezember"),
}


def date_of_birth(ctx: Ctx) -> Piece:
    rng = ctx.rng
    y, m, d = rng.randint(1935, 2006), rng.randint(1, 12), rng.randint(1, 28)
    spelled = rng.random() < 0.35
    month = _MONTHS[ctx.lang][m - 1]
    if ctx.locale == "en_US":
        value = f"{month} {d}, {y}" if spelled else f"{m:02d}/{d:02d}/{y}"
    elif ctx.locale in ("en_GB", "fr_FR"):
        value = f"{d} {month} {y}" if spelled else f"{d:02d}/{m:02d}/{y}"
    else:
        value = f"{d}. {month} {y}" if spelled else f"{d:02d}.{m:02d}.{y}"
    return whole(value, "DATE_OF_BIRTH")


# --- network identifiers ------------------------------------------------------------------------

def ip_address(ctx: Ctx) -> Piece:
    rng = ctx.rng
    style = rng.random()
    if style < 0.55:
        first = rng.choice([n for n in range(11, 224) if n not in (100, 127, 169, 172, 192)])
        value = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    elif style < 0.8:
        value = rng.choice((f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                            f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"))
    else:
        groups = [rng.choice(("2001", "2a01", "2a02", "2600", "2c0f"))] + [f"{rng.randint(0, 0xFFFF):x}"
                                                                          for _ in range(7)]
        value = ":".join(groups) if rng.random() < 0.4 else ":".join(groups[:3]) + "::" + ":".join(groups[6:])
    return whole(value, "IP_ADDRESS")


def ipv4_address(ctx: Ctx) -> Piece:
    """An IPv4 address, where an IPv6 one would need brackets (a URL's host)."""
    rng = ctx.rng
    octets = (rng.randint(11, 99), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
    return whole(".".join(map(str, octets)), "IP_ADDRESS")


def mac_address(ctx: Ctx) -> Piece:
    raw = ctx.rng.randbytes(6).hex()
    style = ctx.rng.random()
    if style < 0.5:
        value = ":".join(raw[i:i + 2] for i in range(0, 12, 2)).upper()
    elif style < 0.7:
        value = ":".join(raw[i:i + 2] for i in range(0, 12, 2))
    elif style < 0.85:
        value = "-".join(raw[i:i + 2] for i in range(0, 12, 2)).upper()
    else:
        value = ".".join(raw[i:i + 4] for i in range(0, 12, 4))
    return whole(value, "MAC_ADDRESS")


_URL_HOSTS = {"fr_FR": ("www.impots.gouv.fr", "espace-client.banque-lyonnaise.fr", "portail.chu-exemple.fr",
                        "www.acme-conseil.fr"),
              "de_DE": ("www.musterbank.de", "portal.klinikum-beispiel.de", "www.beispiel-gmbh.de"),
              "en_GB": ("www.example.co.uk", "portal.nhs-trust.example.uk", "accounts.acme-ltd.co.uk"),
              "en_US": ("www.example.com", "my.acme-corp.com", "portal.mercy-health.example.org")}
_PATHS = ("account/settings", "dossier/{n}", "tickets/{n}", "reset?token=a{n}", "invoice/{n}.pdf", "patient/{n}/chart",
          "docs/getting-started", "s/{n}")


def url(ctx: Ctx) -> Piece:
    rng = ctx.rng
    host = rng.choice(_URL_HOSTS[ctx.locale]) if rng.random() < 0.7 else ctx.fake.domain_name()
    path = rng.choice(_PATHS).format(n=digits(rng, rng.randint(4, 7)))
    scheme = "https://" if rng.random() < 0.85 else "http://"
    return whole(f"{scheme}{host}/{path}", "URL")


SLOTS = {
    "PERSON": person, "PERSON_PLAIN": person_plain, "PERSON_TITLED": person_titled_surname, "FIRST_NAME": first_name,
    "EMAIL": email, "PHONE": phone, "LOCATION": location, "STREET_ADDRESS": street_address, "ADDRESS": postal_address,
    "DATE_OF_BIRTH": date_of_birth, "IP_ADDRESS": ip_address, "IPV4": ipv4_address, "MAC_ADDRESS": mac_address,
    "URL": url,
}
