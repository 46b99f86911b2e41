"""The skills marketplace: Agent Skills (a folder with a SKILL.md) validated, scanned, signed, stored,
searched and installed per tenant, team or key."""
