"""German sentences (de_DE texts); same conventions as templates_en."""

from __future__ import annotations

SUPPORT = {
    "openers": (
        "Hallo, mein Name ist [[PERSON_PLAIN]] und ich komme nicht mehr in mein Konto.",
        "Sehr geehrte Damen und Herren,",
        "Hallo [[FIRST_NAME]],",
        "Von: [[PERSON_PLAIN]] <[[EMAIL]]>\nBetreff: Konto gesperrt",
        "Ticket erstellt von [[PERSON]] ([[EMAIL]]).",
        "Kunde: [[PERSON]]\nKanal: Telefon",
    ),
    "bodies": (
        "Seit gestern erscheint bei jeder Anmeldung die Fehlerseite [[URL]].",
        "Sie erreichen mich unter [[PHONE]] ab 18 Uhr.",
        "Meine neue Adresse lautet [[ADDRESS]].",
        "Bitte schicken Sie die Unterlagen an [[EMAIL]].",
        "Meine Kollegin [[PERSON_PLAIN]] ist unter [[PHONE]] erreichbar.",
        "Die MAC-Adresse des Routers ist [[MAC_ADDRESS]], er bekommt die IP-Adresse [[IP_ADDRESS]].",
        "Im Protokoll sehe ich Anmeldungen von [[IP_ADDRESS]], das sind nicht wir.",
        "Zur Identitätsprüfung: Geburtsdatum [[DATE_OF_BIRTH]], Reisepassnummer [[PASSPORT]].",
        "Ich bin am [[DATE_OF_BIRTH]] geboren, falls Sie das für die Suche brauchen.",
        "Meine Führerscheinnummer ist [[DRIVER_LICENSE]].",
        "Ich habe mit meiner Karte [[CREDIT_CARD]] bezahlt, aber die Bestellung kam nie an.",
        "Ich ziehe nächsten Monat nach [[LOCATION]], bitte aktualisieren Sie meine Daten.",
        "Der Techniker, [[PERSON_TITLED]], war am Dienstag da, konnte das Problem aber nicht lösen.",
        "Ich habe die Rechnung an [[PERSON]] in der Buchhaltung weitergeleitet.",
        "Die App stürzt jedes Mal ab, wenn ich die Einstellungen öffne.",
        "Meine Telefonnummer hat sich geändert, sie lautet jetzt [[PHONE]].",
        "Meine Frau [[PERSON_PLAIN]] ist ebenfalls Vertragspartnerin.",
        "Der Bote hat das Paket in der [[STREET_ADDRESS]] abgegeben statt bei mir.",
        "Link zum Zurücksetzen: [[URL]]",
    ),
    "closers": (
        "Mit freundlichen Grüßen\n[[PERSON_PLAIN]]",
        "Viele Grüße,\n[[PERSON]]\n[[PHONE]]",
        "Danke und Gruß, [[FIRST_NAME]]",
        "Beste Grüße, [[PERSON_PLAIN]] | [[EMAIL]]",
        "Vielen Dank für Ihre Hilfe.",
    ),
}

CLINICAL = {
    "openers": (
        "Patient: [[PERSON_PLAIN]], geb. [[DATE_OF_BIRTH]].",
        "Entlassungsbericht für [[PERSON_PLAIN]] (Patienten-ID [[MEDICAL_RECORD_NUMBER]]).",
        "[[PERSON_TITLED]] stellte sich heute zur Kontrolle vor.",
        "Name: [[PERSON_PLAIN]]\nGeburtsdatum: [[DATE_OF_BIRTH]]",
    ),
    "bodies": (
        "Hauptdiagnose (ICD-10): [[ICD10_CODE]].",
        "Diagnose [[ICD10_CODE]], Kontrolle in drei Monaten.",
        "Krankenkasse: Versichertennummer [[HEALTH_INSURANCE_ID]].",
        "Fallnummer [[MEDICAL_RECORD_NUMBER]], Befunde an die Kardiologie übermittelt.",
        "Angehörige: [[PERSON_PLAIN]], [[PHONE]].",
        "Wohnt in der [[ADDRESS]] mit ihrer Tochter.",
        "Überwiesen von [[PERSON_TITLED]] aus [[LOCATION]].",
        "Penicillinallergie. RR 132/84, HF 76, SpO2 97 %.",
        "Nächster Termin am 12.03. um 10:15 Uhr in der Kardiologie.",
        "Thoraxschmerz mit Ausstrahlung in den linken Arm seit Montag.",
        "Die Tochter, [[PERSON_PLAIN]], ist unter [[PHONE]] erreichbar.",
        "Geboren am [[DATE_OF_BIRTH]], lebt allein, im Alltag selbstständig.",
        "Befunde im Portal: [[URL]]",
    ),
    "closers": (
        "Elektronisch signiert von Dr. [[PERSON_PLAIN]].",
        "[[PERSON_TITLED]], Oberarzt",
        "",
    ),
}

BANK = {
    "openers": (
        "Sehr geehrte Damen und Herren,",
        "Hallo [[PERSON]],",
        "Kontoinhaber: [[PERSON]], [[ADDRESS]].",
        "Von: [[PERSON_PLAIN]] <[[EMAIL]]>",
    ),
    "bodies": (
        "Bitte überweisen Sie den Betrag auf die IBAN [[IBAN]] (BIC [[SWIFT_BIC]]).",
        "Empfänger: [[PERSON_PLAIN]], IBAN [[IBAN]].",
        "Unsere Bankverbindung: IBAN [[IBAN]], BIC [[SWIFT_BIC]].",
        "Kontonummer [[BANK_ACCOUNT]] bei der Filiale [[LOCATION]].",
        "Kreditkarte [[CREDIT_CARD]], gültig bis [[CARD_EXPIRY]], Prüfnummer [[CARD_CVV]].",
        "Meine Karte [[CREDIT_CARD]] läuft [[CARD_EXPIRY]] ab; die Kartenprüfnummer ist [[CARD_CVV]].",
        "Die Karte mit der Endung [[LAST4]] wurde heute zweimal abgelehnt.",
        "Bitte buchen Sie den Jahresbeitrag von der Karte [[CREDIT_CARD]] ab.",
        "Umsatzsteuer-Identifikationsnummer: [[EU_VAT]].",
        "USt-IdNr. des Lieferanten: [[EU_VAT]]",
        "Der französische Lieferant hat die SIRET [[FR_SIRET]].",
        "Erstattung in Kryptowährung an die Adresse [[CRYPTO_WALLET]].",
        "Wallet-Adresse für die Auszahlung: [[CRYPTO_WALLET]]",
        "Eine Überweisung über 2.450,00 € ist für den 15. März geplant.",
        "Wir haben eine ungewöhnliche Anmeldung von [[IP_ADDRESS]] festgestellt.",
        "Bitte bestätigen Sie die Zahlung telefonisch unter [[PHONE]].",
        "Der Kontoauszug wurde an [[EMAIL]] geschickt.",
    ),
    "closers": (
        "Mit freundlichen Grüßen\n[[PERSON_PLAIN]]\nKundenservice",
        "Viele Grüße\n[[PERSON]]",
        "",
    ),
}

DEFENSE = {
    "openers": (
        "[[BANNER]]\n\nVERMERK\nVon: [[PERSON_TITLED]]\nBetreff: Sachstand Projekt [[CODEWORD]]",
        "[[BANNER]]\n\nAn: [[PERSON_PLAIN]]\nBetreff: Erprobung in [[LOCATION]]",
        "[[BANNER]]\n\nEinstufung: [[LABEL_LEVEL]]\nVerfasser: [[PERSON_PLAIN]]",
    ),
    "bodies": (
        "Die Erprobung verzögert sich um zwei Wochen, da der Schießplatz nicht verfügbar ist.",
        "Die Sensorleistung erreichte in allen Versuchen bis auf einen den Schwellenwert.",
        "Die Ware unterliegt der [[EXPORT_CONTROL=Dual-Use-Verordnung (EU) 2021/821]].",
        "Für [[EXPORT_CONTROL=Güter mit doppeltem Verwendungszweck]] ist eine Ausfuhrgenehmigung erforderlich.",
        "Das US-Bauteil unterliegt dem [[EXPORT_CONTROL=ITAR]]; keine Wiederausfuhr ohne Genehmigung.",
        "Das Verschlüsselungsmodul ist unter ECCN [[ECCN]] eingestuft (Exportkontrolle).",
        "Projekt [[CODEWORD]] liegt im Zeitplan für die Herbstprüfung.",
        "[[CODEWORD]] nicht auf offenen Systemen erwähnen.",
        "Ansprechpartner: [[PERSON_PLAIN]], [[PHONE]], [[EMAIL]].",
        "Der Besuch in [[LOCATION]] ist für die Woche ab dem 14. bestätigt.",
        "Die Haushaltszahlen stehen im Anhang; keine Änderung seit der letzten Prüfung.",
    ),
    "closers": (
        "[[BANNER]]",
        "Im Auftrag\n[[PERSON_PLAIN]]\n\n[[BANNER]]",
    ),
}

NEGATIVES = (
    "Ihre Bestellnummer [[NEG_ORDER]] wurde versandt.",
    "Sendungsnummer: [[NEG_TRACKING]]",
    "Rechnung [[NEG_ORDER]] anbei.",
    "Die Transaktionsreferenz [[NEG_LUHN]] konnte nicht zugeordnet werden.",
    "Ich habe die Kartennummer [[NEG_LUHN]] eingegeben, aber das Formular meldet sie als ungültig.",
    "Die IBAN [[NEG_IBAN]] wurde von der Bank als ungültig abgelehnt.",
    "Zeitstempel: [[NEG_EPOCH]]",
    "Sicherung [[NEG_DATETIME]] ohne Fehler abgeschlossen.",
    "ISBN [[NEG_ISBN]]",
    "Das Buch (ISBN [[NEG_ISBN]]) ist vergriffen.",
    "Bitte auf Version [[NEG_VERSION]] aktualisieren, das behebt den Absturz.",
    "Behoben in Commit [[NEG_COMMIT]].",
    "Es ist kein [[NEG:secret_word=Geheimnis]], dass sich der Start verschiebt.",
    "Bitte behandeln Sie diese Informationen [[NEG:secret_word=vertraulich]].",
    "Das Rezept bleibt [[NEG:secret_word=top secret]], sagt der Koch.",
    "Ihr [[NEG:capitalised_words=Kundenservice Team]] wünscht [[NEG:capitalised_words=Frohe Weihnachten]]!",
    "Die [[NEG:capitalised_words=Allgemeinen Geschäftsbedingungen]] finden Sie online.",
    "Der [[NEG:capitalised_words=Große Saal]] ist für Freitag reserviert.",
    "[[NEG:capitalised_words=Schöne Grüße]] aus dem Büro!",
)
