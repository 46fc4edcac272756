"""Tokens of AWS IoT SQL, read on demand so the parser can switch to reading a
bare topic filter after FROM."""

from __future__ import annotations

from dataclasses import dataclass

from localiot.iotsql.errors import SqlParseError

NUM, STR, WORD, OP, EOF = "number", "string", "word", "operator", "end of statement"

# Words that cannot name an attribute. VALUE is only a keyword right after SELECT.
RESERVED = frozenset({
    "SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "CASE", "WHEN", "THEN", "ELSE", "END",
    "TRUE", "FALSE", "NULL", "IN", "CONTAINS",
})

OPERATORS = ("<>", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", ",", ".", "(", ")",
             "[", "]", "{", "}", ":")

ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str          # source text (for strings: the decoded value)
    pos: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == WORD else ""

    def is_kw(self, *words: str) -> bool:
        return self.kind == WORD and self.text.upper() in words

    def is_op(self, *ops: str) -> bool:
        return self.kind == OP and self.text in ops

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of statement"
        if self.kind == STR:
            return f"string {self.text!r}"
        return f"'{self.text}'"


class Lexer:
    def __init__(self, text: str, start: int = 0) -> None:
        self.text = text
        self.pos = start
        self.buffer: list[Token] = []

    def error(self, message: str, pos: int) -> SqlParseError:
        return SqlParseError(message, pos, self.text)

    def peek(self, ahead: int = 0) -> Token:
        while len(self.buffer) <= ahead:
            self.buffer.append(self._lex())
        return self.buffer[ahead]

    def next(self) -> Token:
        token = self.peek()
        self.buffer.pop(0)
        return token

    def rewind_to(self, pos: int) -> None:
        """Forget lookahead and continue reading raw text at `pos`."""
        self.buffer.clear()
        self.pos = pos

    def _skip_space(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos].isspace():
            self.pos += 1

    def _lex(self) -> Token:
        self._skip_space()
        text, start = self.text, self.pos
        if start >= len(text):
            return Token(EOF, "", start, start)
        c = text[start]
        if c.isdigit():
            return self._number(start)
        if c.isalpha() or c == "_":
            end = start + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            self.pos = end
            return Token(WORD, text[start:end], start, end)
        if c in "'\"":
            return self._string(start, c)
        for op in OPERATORS:
            if text.startswith(op, start):
                self.pos = start + len(op)
                return Token(OP, op, start, self.pos)
        raise self.error(f"unexpected character {c!r}", start)

    def _number(self, start: int) -> Token:
        text, end = self.text, start
        while end < len(text) and text[end].isdigit():
            end += 1
        if end + 1 < len(text) and text[end] == "." and text[end + 1].isdigit():
            end += 1
            while end < len(text) and text[end].isdigit():
                end += 1
        if end < len(text) and text[end] in "eE":
            probe = end + 1
            if probe < len(text) and text[probe] in "+-":
                probe += 1
            if probe < len(text) and text[probe].isdigit():
                end = probe
                while end < len(text) and text[end].isdigit():
                    end += 1
        if end < len(text) and (text[end].isalpha() or text[end] == "_"):
            raise self.error(f"malformed number {text[start:end + 1]!r}", start)
        self.pos = end
        return Token(NUM, text[start:end], start, end)

    def _string(self, start: int, quote: str) -> Token:
        text, i, out = self.text, start + 1, []
        while True:
            if i >= len(text):
                raise self.error("unterminated string literal", start)
            c = text[i]
            if c == quote:
                if i + 1 < len(text) and text[i + 1] == quote:   # SQL-style doubled quote
                    out.append(quote)
                    i += 2
                    continue
                break
            if c == "\\" and i + 1 < len(text):
                e = text[i + 1]
                if e in ESCAPES:
                    out.append(ESCAPES[e])
                    i += 2
                    continue
                if e == "u" and i + 6 <= len(text):
                    digits = text[i + 2:i + 6]
                    try:
                        out.append(chr(int(digits, 16)))
                    except ValueError:
                        raise self.error(f"invalid \\u escape {digits!r}", i) from None
                    i += 6
                    continue
                # Unknown escapes are kept as written, so regular expressions
                # such as '\d+' need no doubling.
                out.append(c)
                i += 1
                continue
            out.append(c)
            i += 1
        self.pos = i + 1
        return Token(STR, "".join(out), start, self.pos)

    def read_topic(self, start: int) -> Token:
        """The FROM clause's topic filter at `start` (just past FROM, whatever was looked
        ahead): a quoted string or a bare run of non-space text."""
        self.rewind_to(start)
        self._skip_space()
        start = self.pos
        if start >= len(self.text):
            raise self.error("expected a topic filter after FROM", start)
        if self.text[start] in "'\"":
            token = self._string(start, self.text[start])
            return token
        end = start
        while end < len(self.text) and not self.text[end].isspace():
            end += 1
        self.pos = end
        return Token(STR, self.text[start:end], start, end)
