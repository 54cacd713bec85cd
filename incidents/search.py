"""Full-text search over incidents' title and description (and, on request, their
responses): the one module that knows how a search box's text becomes an index query.

The index: on SQLite, FTS5 tables `incidents_incident_fts` and `incidents_response_fts`
(external content, tokenizer `unicode61 remove_diacritics 2`) kept in step by triggers
on the base tables, so every writer (services, the admin, `seed_load`'s bulk inserts, a
raw UPDATE) updates them in its own transaction; on MariaDB/MySQL, InnoDB `FULLTEXT`
indexes, which the engine maintains (`install`, called by migration 0018 and, for
SQLite, again after every `migrate`: a table rebuild by a later migration drops triggers).

What a user's text means (`parse`), alike on both databases:
- words are AND-ed; the last word, if not in quotes, is a prefix ("gas le" finds
  "gas leak"); "quoted words" are a phrase, and so are words joined by punctuation
  ("wi-fi", "e-mail");
- case and accents are ignored (FTS5's tokenizer folds them; MariaDB's collation does);
- every other character (`*`, `+`, `-`, `(`, `"`, `NEAR`, `AND` as operators) is text,
  never syntax: each word is quoted or prefixed by the builder, so no input raises;
- words the MariaDB index does not hold (shorter than 3 letters, or one of InnoDB's
  stopwords: "the", "with"...) are left out on both databases, and so is a last word of
  one letter (a prefix that would expand to most of the vocabulary) or a stopword; a search left with no word matches
  nothing (`SearchQuery.ignored` says which words were left out, for the page to say so)
  rather than scanning the table. Inside a phrase they are kept (SQLite matches them;
  MariaDB lets them stand for any word).

`matching(queryset, text, responses=False)` is the filter: `pk IN (index look-up)`, so it
combines with `visible_to`, every other filter and the keyset cursors, and the list's own
index still gives the order (newest first). `with_rank` adds `search_rank` (higher is
more relevant) for `ordering=relevance`.
"""

import re
import unicodedata
from dataclasses import dataclass, field

from django.db import connection as default_connection
from django.db.models.expressions import RawSQL
from django.db.models.fields import FloatField

# InnoDB's innodb_ft_min_token_size (default 3) and its default stopword list
# (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD).
MIN_WORD_LENGTH = 3
MIN_PREFIX_LENGTH = 2
STOPWORDS = frozenset(
    (
        *("a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how", "i", "in"),
        *("is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "und", "was", "what", "when", "where"),
        *("who", "will", "with", "www"),
    )
)
# A bound on the work one query may ask for (the search field allows 100 characters).
MAX_TERMS = 16

_WORD = re.compile(r"[^\W_]+")
_PART = re.compile(r'"([^"]*)"?|([^\s"]+)')


def fold(text: str) -> str:
    """Lower case without accents ("Café" -> "cafe"), as both indexes compare."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@dataclass(frozen=True)
class Term:
    """One condition: a word, a prefix, or a phrase (several words in order)."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class SearchQuery:
    terms: tuple[Term, ...] = ()
    ignored: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.terms)

    def fts5(self) -> str:
        """The FTS5 MATCH expression: each term a quoted string (the words hold no quote)."""
        return " AND ".join('"' + " ".join(term.words) + '"' + ("*" if term.prefix else "") for term in self.terms)

    def boolean_mode(self) -> str:
        """MariaDB's `AGAINST (... IN BOOLEAN MODE)`: every term required (+)."""
        parts = []
        for term in self.terms:
            if len(term.words) > 1:
                parts.append('+"' + " ".join(term.words) + '"')
            else:
                parts.append("+" + term.words[0] + ("*" if term.prefix else ""))
        return " ".join(parts)


def _indexed(word: str) -> bool:
    return len(word) >= MIN_WORD_LENGTH and word not in STOPWORDS


def parse(text: str) -> SearchQuery:
    """The user's text as index terms (see the module's docstring for the rules)."""
    chunks = []  # (words, quoted)
    for quoted, bare in _PART.findall(fold(text or "")):
        words = tuple(_WORD.findall(quoted or bare))
        if words:
            chunks.append((words, bool(quoted)))
    terms, ignored = [], []
    for position, (words, quoted) in enumerate(chunks):
        last = position == len(chunks) - 1
        if len(words) > 1 or quoted:
            if any(_indexed(word) for word in words):
                terms.append(Term(words))
            else:
                ignored.append(" ".join(words))
        elif last:
            # The word being typed: a prefix, if it is long enough to narrow anything
            # (a whole stopword is left out: MariaDB holds no such word to extend).
            if len(words[0]) >= MIN_PREFIX_LENGTH and words[0] not in STOPWORDS:
                terms.append(Term(words, prefix=True))
            else:
                ignored.append(words[0])
        elif _indexed(words[0]):
            terms.append(Term(words))
        else:
            ignored.append(words[0])
    return SearchQuery(tuple(dict.fromkeys(terms))[:MAX_TERMS], tuple(ignored))


def _vendor(connection) -> str:
    return "mysql" if connection.vendor == "mysql" else "sqlite"


def _incident_ids_sql(query: SearchQuery, connection) -> tuple[str, list]:
    if _vendor(connection) == "mysql":
        return (
            "SELECT id FROM incidents_incident WHERE MATCH (title, description) AGAINST (%s IN BOOLEAN MODE)",
            [query.boolean_mode()],
        )
    return "SELECT rowid FROM incidents_incident_fts WHERE incidents_incident_fts MATCH %s", [query.fts5()]


def _response_incident_ids_sql(query: SearchQuery, connection) -> tuple[str, list]:
    if _vendor(connection) == "mysql":
        return (
            "SELECT incident_id AS id FROM incidents_response WHERE MATCH (description) AGAINST (%s IN BOOLEAN MODE)",
            [query.boolean_mode()],
        )
    return (
        "SELECT incident_id FROM incidents_response WHERE id IN "
        "(SELECT rowid FROM incidents_response_fts WHERE incidents_response_fts MATCH %s)",
        [query.fts5()],
    )


def matching(queryset, text: str | SearchQuery, *, responses: bool = False, connection=None):
    """`queryset` narrowed to incidents whose title and description hold every term (or,
    with `responses`, one of whose responses does). An empty query (nothing indexable)
    matches nothing."""
    query = text if isinstance(text, SearchQuery) else parse(text)
    if not query:
        return queryset.none()
    connection = connection or default_connection
    sql, params = _incident_ids_sql(query, connection)
    if responses:
        more_sql, more_params = _response_incident_ids_sql(query, connection)
        sql, params = f"{sql} UNION {more_sql}", [*params, *more_params]
        if _vendor(connection) == "mysql":
            # As a derived table, MariaDB materializes the union once from both indexes; a
            # bare UNION in IN () becomes a dependent subquery run for every incident.
            sql = f"SELECT id FROM ({sql}) AS search_matches"  # noqa: S608 - our own SQL, values are params
    return queryset.filter(pk__in=RawSQL(sql, params))  # noqa: S611 - fixed SQL, the query is a parameter


def responses_matching(queryset, text: str | SearchQuery, *, connection=None):
    """A Response queryset narrowed to responses holding every term (the admin's search)."""
    query = text if isinstance(text, SearchQuery) else parse(text)
    if not query:
        return queryset.none()
    connection = connection or default_connection
    if _vendor(connection) == "mysql":
        sql = "SELECT id FROM incidents_response WHERE MATCH (description) AGAINST (%s IN BOOLEAN MODE)"
        params = [query.boolean_mode()]
    else:
        sql = "SELECT rowid FROM incidents_response_fts WHERE incidents_response_fts MATCH %s"
        params = [query.fts5()]
    return queryset.filter(pk__in=RawSQL(sql, params))  # noqa: S611 - fixed SQL, the query is a parameter


def rank(text: str | SearchQuery, connection=None) -> RawSQL:
    """How well an incident's title and description match (higher is better): computed
    for the rows of one page, not for every match."""
    query = text if isinstance(text, SearchQuery) else parse(text)
    connection = connection or default_connection
    if not query:
        return RawSQL("0", [], output_field=FloatField())
    if _vendor(connection) == "mysql":
        return RawSQL(
            "MATCH (incidents_incident.title, incidents_incident.description) AGAINST (%s IN BOOLEAN MODE)",
            [query.boolean_mode()],
            output_field=FloatField(),
        )
    # bm25() is lower for better matches; negated so that both databases sort descending.
    return RawSQL(
        "COALESCE((SELECT -bm25(incidents_incident_fts) FROM incidents_incident_fts "
        "WHERE incidents_incident_fts MATCH %s AND rowid = incidents_incident.id), 0)",
        [query.fts5()],
        output_field=FloatField(),
    )


def with_rank(queryset, text: str):
    return queryset.annotate(search_rank=rank(text))


# The index itself. Triggers keep SQLite's tables in step with every write, whoever makes it.
SQLITE_TABLES = {
    "incidents_incident_fts": (
        "CREATE VIRTUAL TABLE IF NOT EXISTS incidents_incident_fts USING fts5("
        "title, description, content='incidents_incident', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    ),
    "incidents_response_fts": (
        "CREATE VIRTUAL TABLE IF NOT EXISTS incidents_response_fts USING fts5("
        "description, content='incidents_response', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    ),
}
SQLITE_TRIGGERS = {
    "incidents_incident_fts_insert": (
        "incidents_incident_fts",
        "CREATE TRIGGER IF NOT EXISTS incidents_incident_fts_insert AFTER INSERT ON incidents_incident BEGIN "
        "INSERT INTO incidents_incident_fts (rowid, title, description) "
        "VALUES (new.id, new.title, new.description); END",
    ),
    "incidents_incident_fts_delete": (
        "incidents_incident_fts",
        "CREATE TRIGGER IF NOT EXISTS incidents_incident_fts_delete AFTER DELETE ON incidents_incident BEGIN "
        "INSERT INTO incidents_incident_fts (incidents_incident_fts, rowid, title, description) "
        "VALUES ('delete', old.id, old.title, old.description); END",
    ),
    "incidents_incident_fts_update": (
        "incidents_incident_fts",
        "CREATE TRIGGER IF NOT EXISTS incidents_incident_fts_update "
        "AFTER UPDATE OF title, description ON incidents_incident BEGIN "
        "INSERT INTO incidents_incident_fts (incidents_incident_fts, rowid, title, description) "
        "VALUES ('delete', old.id, old.title, old.description); "
        "INSERT INTO incidents_incident_fts (rowid, title, description) "
        "VALUES (new.id, new.title, new.description); END",
    ),
    "incidents_response_fts_insert": (
        "incidents_response_fts",
        "CREATE TRIGGER IF NOT EXISTS incidents_response_fts_insert AFTER INSERT ON incidents_response BEGIN "
        "INSERT INTO incidents_response_fts (rowid, description) VALUES (new.id, new.description); END",
    ),
    "incidents_response_fts_delete": (
        "incidents_response_fts",
        "CREATE TRIGGER IF NOT EXISTS incidents_response_fts_delete AFTER DELETE ON incidents_response BEGIN "
        "INSERT INTO incidents_response_fts (incidents_response_fts, rowid, description) "
        "VALUES ('delete', old.id, old.description); END",
    ),
    "incidents_response_fts_update": (
        "incidents_response_fts",
        "CREATE TRIGGER IF NOT EXISTS incidents_response_fts_update "
        "AFTER UPDATE OF description ON incidents_response BEGIN "
        "INSERT INTO incidents_response_fts (incidents_response_fts, rowid, description) "
        "VALUES ('delete', old.id, old.description); "
        "INSERT INTO incidents_response_fts (rowid, description) VALUES (new.id, new.description); END",
    ),
}
MYSQL_INDEXES = {
    "incidents_incident": ("incident_fulltext", "title, description"),
    "incidents_response": ("response_fulltext", "description"),
}


def install(connection) -> None:
    """Create whatever part of the index is missing (idempotent). On SQLite a missing
    trigger means writes went unindexed since it went: the table it feeds is rebuilt."""
    with connection.cursor() as cursor:
        if _vendor(connection) == "mysql":
            for table, (name, columns) in MYSQL_INDEXES.items():
                cursor.execute(f"SHOW INDEX FROM {table} WHERE Key_name = %s", [name])
                if not cursor.fetchall():
                    cursor.execute(f"ALTER TABLE {table} ADD FULLTEXT INDEX {name} ({columns})")
            return
        cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        present = {row[0] for row in cursor.fetchall()}
        stale = set()
        for table, sql in SQLITE_TABLES.items():
            if table not in present:
                cursor.execute(sql)
                stale.add(table)
        for name, (table, sql) in SQLITE_TRIGGERS.items():
            if name not in present:
                cursor.execute(sql)
                stale.add(table)
        for table in sorted(stale):
            cursor.execute(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")  # noqa: S608 - our table names


def uninstall(connection) -> None:
    with connection.cursor() as cursor:
        if _vendor(connection) == "mysql":
            for table, (name, _) in MYSQL_INDEXES.items():
                cursor.execute(f"SHOW INDEX FROM {table} WHERE Key_name = %s", [name])
                if cursor.fetchall():
                    cursor.execute(f"ALTER TABLE {table} DROP INDEX {name}")
            return
        for name in SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        for table in SQLITE_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
