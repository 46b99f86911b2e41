"""Full-text search over skills: SQLite FTS5 (bm25) and PostgreSQL full text (weighted tsvector,
``ts_rank``), both with English stemming and the same weights: name, then description, then body.

The user's text is reduced to its words (letters and digits), so no query syntax of either engine
can be injected; every word must match (AND).  An empty text lists the visible skills by install
count.  Filters: publisher name, tag, maximum risk level.  Only each skill's latest installable
version is indexed: yanked versions are never found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from passerelle.skills.records import SearchQuery
from passerelle.skills.risk import LEVELS

MAX_WORDS = 16
MAX_LIMIT = 100


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())[:MAX_WORDS]


@dataclass(frozen=True)
class SearchDialect:
    name: str  # "sqlite" | "postgres"

    def _match(self, terms: list[str]) -> tuple[str, str, str, list[object]]:
        """(join, where, rank expression, args of where then rank)."""
        if self.name == "sqlite":
            expr = " ".join(f'"{t}"' for t in terms)  # quoted terms: FTS5 syntax characters are inert
            return (" JOIN skill_search ON skill_search.skill_id = s.id", "skill_search MATCH ?",
                    "-bm25(skill_search, 0.0, 10.0, 4.0, 1.0)", [expr])
        text = " ".join(terms)
        return (" JOIN skill_search f ON f.skill_id = s.id", "f.document @@ plainto_tsquery('english', ?)",
                "ts_rank(f.document, plainto_tsquery('english', ?))", [text, text])

    def sql(self, tenant_id: str, query: SearchQuery, skill_columns: Sequence[str], version_columns: Sequence[str],
            installs: str) -> tuple[str, list[object]]:
        terms = words(query.text)
        join, where = "", ["(s.tenant_id = ? OR s.visibility = 'shared')"]
        args: list[object] = [tenant_id]
        rank = f"CAST({installs} AS DOUBLE PRECISION)"
        rank_args: list[object] = []
        if terms:
            join, match, rank, match_args = self._match(terms)
            where.append(match)
            args.append(match_args[0])
            rank_args = match_args[1:]
        if query.publisher is not None:
            where.append("p.name = ?")
            args.append(query.publisher)
        if query.tag is not None:
            where.append("EXISTS (SELECT 1 FROM skill_tags t WHERE t.skill_id = s.id AND t.tag = ?)")
            args.append(query.tag)
        if query.max_risk is not None:
            if query.max_risk not in LEVELS:
                raise ValueError(f"invalid risk level {query.max_risk!r}: expected low, medium or high")
            allowed = LEVELS[:LEVELS.index(query.max_risk) + 1]
            where.append(f"v.risk_level IN ({', '.join('?' * len(allowed))})")
            args.extend(allowed)
        limit = max(1, min(int(query.limit), MAX_LIMIT))
        columns = [*(f"s.{c}" for c in skill_columns), installs, *(f"v.{c}" for c in version_columns)]
        sql = (f"SELECT {', '.join(columns)}, {rank} AS rank, p.name FROM skills s"
               " JOIN skill_versions v ON v.skill_id = s.id AND v.version = s.latest_version"
               f"{join} LEFT JOIN skill_publishers p ON p.id = v.publisher_id"
               f" WHERE {' AND '.join(where)} ORDER BY rank DESC, s.name, s.id LIMIT {limit}")
        # The rank expression comes first in the statement: its arguments go first.
        return sql, [*rank_args, *args]
