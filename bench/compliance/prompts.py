"""4 KB prompts for the latency series, in two kinds.

- ``typical``: what a gateway mostly sees, a system prompt and a conversation in which the user's
  turns are corpus texts (a few values each) and the assistant's turns and the system prompt are
  ordinary prose without any value: about ten labelled values in 4 KB.
- ``dense``: corpus texts back to back, every sentence carrying values: about fifty in 4 KB, the
  worst case for validators.

Both are cut at a line or word end just under ``limit`` bytes (UTF-8).
"""

from __future__ import annotations

import random

from bench.compliance.corpus import DOMAINS, LOCALES, TEMPLATES, WEIGHTS, _allowed, _fakers, make_sample, render
from bench.compliance.values import Ctx

SYSTEM = {
    "en": "You are the virtual assistant of a retail bank. Answer in the customer's language, be brief and polite, "
          "never ask for a full card number or a password, and hand fraud cases over to a human agent. When a "
          "question is about fees, quote the current price list; when it is about a dispute, explain the steps and "
          "the usual delays. Do not make promises about refunds. Summarise the case at the end of the conversation "
          "so that the next agent can pick it up without reading everything again.",
    "fr": "Tu es l'assistant virtuel d'une banque de détail. Réponds dans la langue du client, de façon brève et "
          "courtoise, ne demande jamais un numéro de carte complet ni un mot de passe, et transmets les cas de "
          "fraude à un conseiller. Pour les frais, cite la grille tarifaire en vigueur ; pour une contestation, "
          "explique les étapes et les délais habituels. Ne promets aucun remboursement. Résume le dossier à la fin "
          "de la conversation pour que le conseiller suivant puisse le reprendre sans tout relire.",
    "de": "Du bist der virtuelle Assistent einer Filialbank. Antworte in der Sprache des Kunden, kurz und höflich, "
          "frage nie nach einer vollständigen Kartennummer oder einem Passwort und gib Betrugsfälle an einen "
          "Mitarbeiter weiter. Bei Gebühren nenne das aktuelle Preisverzeichnis, bei Reklamationen erkläre die "
          "Schritte und die üblichen Fristen. Versprich keine Erstattungen. Fasse den Fall am Ende des Gesprächs "
          "zusammen, damit der nächste Mitarbeiter ihn übernehmen kann, ohne alles noch einmal zu lesen.",
}

REPLIES = {
    "en": ("Thank you for the details. I have opened a case and a colleague will get back to you within two working "
           "days. In the meantime, please keep an eye on your statements and tell us about any payment you do not "
           "recognise.",
           "I understand this is frustrating. The transfer is still being processed on our side; transfers to other "
           "banks usually arrive within one working day, international ones can take up to four.",
           "Here is what happens next: we check the transaction with the merchant, then we credit the amount back "
           "if the dispute is accepted. You will receive a letter explaining the decision.",
           "Your request has been forwarded to the right team. Is there anything else I can help you with today?"),
    "fr": ("Merci pour ces précisions. J'ai ouvert un dossier et un conseiller reviendra vers vous sous deux jours "
           "ouvrés. D'ici là, surveillez vos relevés et signalez-nous tout paiement que vous ne reconnaissez pas.",
           "Je comprends votre agacement. Le virement est encore en cours de traitement chez nous ; un virement vers "
           "une autre banque arrive en général sous un jour ouvré, à l'international il faut compter jusqu'à quatre.",
           "Voici la suite : nous vérifions l'opération auprès du commerçant, puis nous recréditons le montant si la "
           "contestation est acceptée. Vous recevrez un courrier expliquant la décision.",
           "Votre demande a été transmise au bon service. Puis-je vous aider pour autre chose aujourd'hui ?"),
    "de": ("Vielen Dank für die Angaben. Ich habe einen Vorgang angelegt, ein Kollege meldet sich innerhalb von zwei "
           "Werktagen. Bitte prüfen Sie bis dahin Ihre Kontoauszüge und melden Sie uns jede unbekannte Zahlung.",
           "Ich verstehe, dass das ärgerlich ist. Die Überweisung wird bei uns noch bearbeitet; Überweisungen an "
           "andere Banken kommen meist innerhalb eines Werktags an, Auslandsüberweisungen brauchen bis zu vier.",
           "So geht es weiter: Wir prüfen die Buchung mit dem Händler und schreiben den Betrag gut, wenn die "
           "Reklamation anerkannt wird. Sie erhalten einen Brief mit der Entscheidung.",
           "Ihr Anliegen wurde an die zuständige Abteilung weitergeleitet. Kann ich sonst noch etwas für Sie tun?"),
}
ROLES = {"en": ("User", "Assistant"), "fr": ("Utilisateur", "Assistant"), "de": ("Nutzer", "Assistent")}


def _cut(text: str, limit: int) -> str:
    prompt = text.encode()[:limit].decode("utf-8", "ignore")
    cut = max(prompt.rfind("\n"), prompt.rfind(" "))
    return prompt[:cut] if cut > limit * 0.9 else prompt


def build(count: int, seed: int, kind: str = "typical", limit: int = 4096) -> tuple[list[str], list[int]]:
    """``count`` prompts of ``kind`` and the number of labelled values each holds in full."""
    rng = random.Random(seed)
    fakers = _fakers(seed)
    prompts, values = [], []
    for n in range(count):
        locale = LOCALES[n % len(LOCALES)]
        lang = "fr" if locale == "fr_FR" else "de" if locale == "de_DE" else "en"
        parts: list[str] = []
        labels: list[int] = []
        if kind == "typical":
            user, assistant = ROLES[lang]
            parts.append(f"System: {SYSTEM[lang]}")
            labels.append(0)
        size = len(parts[0].encode()) if parts else 0
        while size < limit:
            if kind == "typical":  # one sentence of the corpus a turn, answered at length
                pool = getattr(TEMPLATES[lang], rng.choice(("SUPPORT", "BANK", "CLINICAL")))
                ctx = Ctx(rng, fakers[locale], locale, lang)
                turn = render(rng.choice(_allowed(pool["bodies"], locale)), ctx)
                parts.append(f"{user}: {turn.text}")
                parts.append(f"{assistant}: {rng.choice(REPLIES[lang])} {rng.choice(REPLIES[lang])}")
                labels += [sum(not label.startswith("NEG:") for _, _, label in turn.spans), 0]
            else:
                domain = rng.choices(DOMAINS[:-1], WEIGHTS[:-1])[0]
                sample = make_sample(0, locale, domain, rng, fakers[locale])
                parts.append(sample.text)
                labels.append(len(sample.entities))
            size = len("\n\n".join(parts).encode())
        prompt = _cut("\n\n".join(parts), limit)
        kept = 0  # the values of the parts that fit whole
        offset = 0
        for part, count_ in zip(parts, labels, strict=True):
            offset += len(part) + 2
            if offset - 2 <= len(prompt):
                kept += count_
        prompts.append(prompt)
        values.append(kept)
    return prompts, values
