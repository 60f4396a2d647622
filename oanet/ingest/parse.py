"""Turn one OCR read into a typed value, or into missing with a reason code.

A read is a whole printed line (`Temp(C) = 1187.8`), or the part of it the value crop
kept (`= 1187.8`, `1187.8 C`). Machines print lines their own way, so the line grammar
follows how panels print rather than one machine:

    [KEY] [SEPARATOR] [UNIT] VALUE [UNIT]

- KEY: the layout's key in any case, spaces inside it optional (`Temp (C)` reads as
  `Temp(C)`); brackets, parentheses, underscores, dots and slashes are literal;
- SEPARATOR: `:` `=` `;` full-width `：` `＝`, `->` `=>`, or `-` `.` `|` followed by a
  space; or nothing but whitespace; leader dots may come first (`Press.....: 62.00`);
- an alarm flag may follow a number and its unit (`1072.2 C HI`, `31.55 MPaLO`): it is dropped. A `-` glued to the digits is the value's sign;
- UNIT: the layout's unit before or after the value, with or without a space, bare or
  in brackets; VALUE may carry a sign (`+`, `-`, `−`);
- VALUE may be printed with a decimal comma (`12,5`) or with thousands grouped, as machines
  set for other locales print them: `1,232.5`, `1.232,5`, `1'232.50`, `12,690` (see ungrouped).
A field's optional `format` (e.g. `"{key} >> {value} {unit}"`) replaces the separator
rule with its own literal text, for what no rule covers.

A value is accepted only when the read is confident, matches the field's printed
format (digits and decimals, pattern or category) and lies in its physical range:
a dropped decimal point or a misread letter ends as missing, never as a wrong number.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from oanet.layout import MAX_VALUE_CHARS, Field

NOT_FOUND, LOW_CONFIDENCE, UNPARSED, OUT_OF_RANGE = "not_found", "low_confidence", "unparsed", "out_of_range"
# a doubtful read (score under ingest.verify_below) whose second read, of its whole line, gave another value
UNCONFIRMED = "unconfirmed"
REASONS = (NOT_FOUND, LOW_CONFIDENCE, UNPARSED, OUT_OF_RANGE, UNCONFIRMED)

SEPARATOR = r"(?:->|=>|[:=;：＝]|[-.|¦](?=\s))"
ALARM_FLAG = r"(?:HH|LL|HI|LO|HIGH|LOW|ALM|ALARM|!+|[↑↓▲▼])"   # after a number and its unit: `1072.2 C HI`
LEADER = r"(?:[.·_…]{2,}\s*)"      # dots that lead the eye from a key to its value: `Press.....: 62.00`
# Letters a recogniser confuses with digits; applied only where digits are expected. A comma is a
# decimal comma there, or a misread point, unless it groups thousands (ungrouped).
_LETTER_DIGITS = {"O": "0", "o": "0", "D": "0", "I": "1", "l": "1"}
_DIGIT_LOOKALIKES = str.maketrans({**_LETTER_DIGITS, "|": "1", ",": "."})
_NUMBER_LOOKALIKES = str.maketrans({**_LETTER_DIGITS, ",": "."})
_GROUP_LOOKALIKES = str.maketrans({**_LETTER_DIGITS, "’": "'"})
# In a number a `|` is a 1 only after a digit or point: before the digits it is a divider or grid line the
# crop took in (`GRAY:|79.1`), and as a 1 it would make 179.1, in range and wrong.
_PIPE_AS_ONE = re.compile(r"(?<=[\d.])\|")
# A number with its thousands grouped by `,` `.` or `'`, and a decimal part after the other mark. Groups
# are exactly three digits and the first one does not start with 0: `1,82.6` (a dropped digit) and
# `0,770` (a decimal comma) are no grouped numbers.
_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(?P<sep>[,.'])\d{3}(?:(?P=sep)\d{3})*(?:(?P<mark>[.,])\d+)?")
_SIGNS = str.maketrans({"−": "-", "–": "-", "＋": "+"})


class Parsed(NamedTuple):
    value: float | str | None
    reason: str | None


_KEY_LOOKALIKES = {"O": "[O0o]", "0": "[O0o]", "o": "[O0o]", "I": "[Il1|]", "l": "[Il1|]", "1": "[Il1|]",
                   "_": "_?"}


def key_regex(key: str) -> str:
    """The key, letter by letter, with optional whitespace between (OCR adds and drops spaces);
    O/0 and I/l/1 are one letter and an underscore may be lost, as a recogniser reads them."""
    return r"\s*".join(_KEY_LOOKALIKES.get(ch, re.escape(ch)) for ch in key if not ch.isspace())


def unit_regex(unit: str | None) -> str:
    if not unit:
        return r"(?!)"                       # matches nothing: no unit to strip
    u = key_regex(unit)
    # A bare unit never starts with a digit glued to one: in `75811 /h` the recogniser lost the l of `l/h`,
    # and the last 1 is the value's (75811), not the unit's l read as a 1 (7581).
    return rf"(?:(?!(?<=\d)\d){u}|\({u}\)|\[{u}\])"


@lru_cache(maxsize=1024)
def line_regex(field: Field, with_key: bool) -> re.Pattern[str]:
    """The printed line of `field` with a named group `value`; the key required or absent."""
    key = rf"\s*{key_regex(field.key)}" if with_key else ""
    unit = unit_regex(field.unit)
    if field.format:
        head, _, tail = field.format.rpartition("{key}")
        return re.compile("^" + template_regex(head, unit) + key + template_regex(tail, unit) + "$", re.IGNORECASE)
    flag = rf"(?:{ALARM_FLAG}\s*)?" if field.dtype in ("float", "int") else ""
    return re.compile(rf"^{key}\s*{LEADER}?(?:{SEPARATOR}\s*)?(?:{unit}\s*)?(?P<value>.+?)\s*(?:{unit})?\s*{flag}$",
                      re.IGNORECASE)


@lru_cache(maxsize=1024)
def line_start(field: Field) -> re.Pattern[str]:
    """A whole printed line of `field` starts so: what its format prints before the key, the
    key, then anything but a letter (so `Temp` does not start `TempMax: 3`)."""
    return re.compile(rf"^{format_head(field)}\s*{key_regex(field.key)}{word_end(field.key)}", re.IGNORECASE)


@lru_cache(maxsize=1024)
def key_and_separator(field: Field) -> re.Pattern[str]:
    """A whole printed line of `field` that starts with its key and a separator (`Station: 2`, not `STATION 6`)."""
    return re.compile(rf"{line_start(field).pattern}\s*{SEPARATOR}", re.IGNORECASE)


@lru_cache(maxsize=1024)
def key_inside(field: Field) -> re.Pattern[str]:
    """Where `field`'s line starts inside a read of several printed fields: after a space, its format's
    head and key, then a separator and more text, or a space and a word with a digit: in
    `Temp: 1127.4 C Press: 45.4`, a key `C` is the unit."""
    return re.compile(rf"(?<=\s){format_head(field)}{key_regex(field.key)}{word_end(field.key)}"
                      rf"(?=\s*{SEPARATOR}\s*\S|\s+\S*\d)", re.IGNORECASE)


def format_head(field: Field) -> str:
    """What the field's `format` prints before its key (`[` of `[{key}] {value}`), as a regex."""
    return template_regex(field.format.rpartition("{key}")[0], unit_regex(field.unit)) if field.format else ""


def word_end(key: str) -> str:
    """After a key ending in a letter or digit, no letter may follow (`Temp` is not `TempMax`);
    after `[LOT]` anything may."""
    return r"(?![A-Za-z])" if key.strip()[-1:].isalnum() else ""


def template_regex(template: str, unit: str) -> str:
    """A piece of a `format` template: literal text optional (a value crop loses some), runs of
    spaces as optional whitespace, `{unit}` as the unit, `{value}` as the named group."""
    out = []
    for piece in re.split(r"(\{value\}|\{unit\}|\s+)", template):
        if piece == "{value}":
            out.append(r"(?P<value>.+?)")
        elif piece == "{unit}":
            out.append(rf"(?:{unit})?")
        elif piece and piece.isspace():
            out.append(r"\s*")
        elif piece:
            out.append(rf"(?:{re.escape(piece)})?")
    return r"\s*" + "".join(out) + r"\s*"


def value_texts(field: Field, text: str) -> list[tuple[str, bool]]:
    """What the read holds as the value, with whether it followed the key: keyed first."""
    text = text.translate(_SIGNS).strip()
    out = []
    for with_key in (True, False):
        m = line_regex(field, with_key).match(text)
        if m:
            out.append((m.group("value"), with_key))
    return out


def _number_text(text: str, join_words: bool, lookalikes: dict = _NUMBER_LOOKALIKES) -> str:
    """Digits as read, lookalikes mapped, the spaces OCR puts inside a number dropped. Without
    `join_words` only spaces around a mark or after the sign go: a value crop of `Zone 2 = 3.5`
    may start inside the key, and `2 3.5` must not become 23.5."""
    text = _PIPE_AS_ONE.sub("1", text.translate(lookalikes))
    if join_words:
        return re.sub(r"\s+", "", text)
    return re.sub(r"^([+-])\s+", r"\1", re.sub(r"\s*([.,'])\s*", r"\1", text))


def ungrouped(number: str) -> str | None:
    """A number printed with its thousands grouped, as plain digits and a point (`1,232.5`, `1.232,5`,
    `1'232.50` -> `1232.5`, `1232.5`, `1232.50`; `12,690` -> `12690`); None for any other text.

    `1,232` alone could be 1232 or a decimal comma's 1.232: both readings are tried, and the field's
    format (int, or its decimals) keeps the one it prints (_candidates). A group that lost or gained a
    digit is no group, so the read ends as unparsed, never as a number a thousand times off."""
    m = _GROUPED.fullmatch(number)
    if m is None or m["mark"] == m["sep"]:
        return None
    return number.replace(m["sep"], "").replace(",", ".")


def upper_run(run: str) -> str:
    """`AOl` -> `AOI`: in a run of capitals, a lower-case l or o is the recogniser's I or O."""
    if sum(ch.isupper() for ch in run) >= 2 and all(ch.isupper() or ch in "lo" for ch in run):
        return run.replace("l", "I").replace("o", "O")
    return run


def letters_back(text: str) -> str:
    """`AO1-02`, `A0I-04` -> `AOI-..`: a 1 or 0 after a capital and not before a digit is an I or O."""
    return re.sub(r"(?<=[A-Z])[10|](?![0-9])", lambda m: "O" if m.group() == "0" else "I", text)


def _candidates(field: Field, value: str, keyed: bool) -> list[str]:
    if field.dtype in ("float", "int"):
        join_words = keyed or not any(ch.isspace() for ch in field.key.strip())
        grouped = ungrouped(_number_text(value, join_words, _GROUP_LOOKALIKES))
        return [t for t in (grouped, _number_text(value, join_words)) if t is not None]
    texts = [value]
    if field.pattern or field.categories:   # a constrained string: OCR's stray spaces cannot fake it
        texts.append(re.sub(r"\s+", "", value))
    out = []
    for t in texts:
        first_digit = next((i for i, ch in enumerate(t) if ch.isdigit()), len(t))
        fixed = t[:first_digit] + t[first_digit:].translate(_DIGIT_LOOKALIKES)
        out += [t, fixed, re.sub(r"[A-Za-z]+", lambda m: upper_run(m.group()), fixed), letters_back(t)]
    return list(dict.fromkeys(out))


def _canonical(text: str) -> str:
    return text.upper().replace("O", "0").replace("I", "1").replace("L", "1").replace("|", "1")


def match_category(categories: tuple[str, ...], text: str) -> str | None:
    """The one category that equals the read once O/0 and I/l/1 are merged, if exactly one does."""
    hits = [c for c in categories if _canonical(c) == _canonical(text)]
    return hits[0] if len(hits) == 1 else None


def _match(field: Field, value_text: str, keyed: bool) -> str | None:
    if field.pattern and len(value_text) > MAX_VALUE_CHARS:   # bounds a layout pattern's matching time
        return None
    pattern = field.value_regex()
    candidates = _candidates(field, value_text, keyed)
    match = next((c for c in candidates if pattern.fullmatch(c)), None)
    if match is None and field.categories:
        match = match_category(field.categories, candidates[0])
    return match


def parse_stored(field: Field, read: list | None, min_confidence: float) -> Parsed:
    """parse_read of a stored read: None, [text, score], or [text, score, check] (see reading.confirm_doubtful)."""
    text, score, *check = read if read else (None, None)
    return parse_read(field, text, score, min_confidence, check[0] if check else None)


def parse_read(field: Field, text: str | None, score: float | None, min_confidence: float,
               check: str | None = None) -> Parsed:
    """The value of one read, or None and the reason. `check`: a second read of the same line, made where
    the first was doubtful; a check that parses to another value voids it (UNCONFIRMED): a recogniser that
    drops a digit or a sign still prints a value that fits the field's format. A check that does not parse
    says nothing either way (a whole line holds more to misread than its value), so the value stands."""
    parsed = _parse_one(field, text, score, min_confidence)
    if check is None or parsed.reason is not None:
        return parsed
    again = _parse_one(field, check, 1.0, 0.0)
    return Parsed(None, UNCONFIRMED) if again.reason is None and again.value != parsed.value else parsed


def _parse_one(field: Field, text: str | None, score: float | None, min_confidence: float) -> Parsed:
    if text is None or not text.strip():
        return Parsed(None, NOT_FOUND)
    if score is None or score < min_confidence:
        return Parsed(None, LOW_CONFIDENCE)
    match = next((m for v, keyed in value_texts(field, text) if (m := _match(field, v, keyed)) is not None), None)
    if match is None:
        return Parsed(None, UNPARSED)
    if field.dtype in ("str", "category"):
        return Parsed(match, None)
    value = float(match)
    if field.range is not None and not field.range[0] <= value <= field.range[1]:
        return Parsed(None, OUT_OF_RANGE)
    return Parsed(value, None)
