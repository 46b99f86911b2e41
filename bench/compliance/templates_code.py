"""Code snippets with secrets, the same in every language but for the sentence that introduces them."""

from __future__ import annotations

LEAD_INS = {
    "en": ("Here is my config, can you tell me why the deploy fails?", "Can you review this snippet?",
           "This is what I run:", "The Wi-Fi password is [[PASSWORD]], the snippet below still times out.", ""),
    "fr": ("Voici ma config, pourquoi le déploiement échoue-t-il ?", "Pouvez-vous relire ce bout de code ?",
           "Voici ce que je lance :", "Le mot de passe du Wi-Fi est [[PASSWORD]], mais le script échoue quand même.",
           ""),
    "de": ("Hier ist meine Konfiguration, warum schlägt das Deployment fehl?", "Kannst du dir diesen Code ansehen?",
           "Das führe ich aus:", "Das WLAN-Passwort lautet [[PASSWORD]], trotzdem läuft das Skript in einen Timeout.",
           ""),
}

COMMENTS = {
    "en": ("TODO: move these to the vault", "temporary, remove before release", "prod settings"),
    "fr": ("TODO : déplacer dans le coffre", "temporaire, à retirer avant la mise en prod", "réglages de prod"),
    "de": ("TODO: in den Tresor verschieben", "vorläufig, vor dem Release entfernen", "Produktionseinstellungen"),
}

SNIPPETS = (
    'import boto3\n\n# {comment}\ns3 = boto3.client(\n    "s3",\n    aws_access_key_id="[[AWS_ID]]",\n'
    '    aws_secret_access_key="[[AWS_SECRET]]",\n)',
    "# {comment}\nDATABASE_HOST=[[IP_ADDRESS]]\nDATABASE_USER=app\nDATABASE_PASSWORD=[[PASSWORD]]\n"
    "STRIPE_SECRET_KEY=[[TOKEN]]",
    'smtp:\n  host: [[IP_ADDRESS]]\n  username: [[EMAIL]]\n  password: "[[PASSWORD]]"  # {comment}',
    'curl -s [[URL]] \\\n  -H "Authorization: Bearer [[JWT]]"',
    '// {comment}\nconst client = new Client({ apiKey: "[[TOKEN]]", baseURL: "[[URL]]" });',
    '{\n  "api_key": "[[HEX_KEY]]",\n  "endpoint": "[[URL]]",\n  "owner": "[[EMAIL]]"\n}',
    "$ cat ~/.ssh/id_rsa\n[[PRIVATE_KEY]]",
    "[[NEG_DATETIME]] INFO auth ok user=[[EMAIL]] src=[[IP_ADDRESS]] mac=[[MAC_ADDRESS]] ts=[[NEG_EPOCH]]",
    "commit [[NEG_COMMIT]]\nAuthor: [[PERSON_PLAIN]] <[[EMAIL]]>\nDate:   Tue Mar 12 10:14:03 2024 +0100\n\n"
    "    fix: rotate the leaked token [[TOKEN]]",
    "# {comment}\nexport API_TOKEN=[[TOKEN]]\npython main.py --host [[IP_ADDRESS]] --port 8443",
    "    environment:\n      - POSTGRES_PASSWORD=[[PASSWORD]]\n      - GITHUB_TOKEN=[[TOKEN]]",
    'DATABASE_URL = "postgresql://billing:[[PASSWORD]]@[[IPV4]]:5432/billing"',
    'resp = requests.get("[[URL]]", headers={"Authorization": "Bearer [[TOKEN]]"}, timeout=10)',
    "jwt = '[[JWT]]'\nclaims = decode(jwt, verify=False)  # {comment}",
    "ssh deploy@[[IP_ADDRESS]] -i ~/.ssh/deploy_key  # {comment}\n"
    "sudo ip link set eth0 address [[MAC_ADDRESS]]",
)
