"""Recursive-descent parser of AWS IoT SQL (SELECT ... FROM 'topic' WHERE ...).

Precedence, lowest first: OR, AND, NOT, comparisons (= <> != < <= > >= IN
CONTAINS), + -, * / %, unary -, postfix (.name, [index]), primaries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from localiot.iotsql import nodes as n
from localiot.iotsql.errors import SqlParseError
from localiot.iotsql.functions import CAST_TYPES, FUNCTIONS
from localiot.iotsql.lexer import EOF, NUM, OP, RESERVED, STR, WORD, Lexer, Token
from localiot.iotsql.values import DECIMAL128, Numbers
from localiot.topics import filter_problem

COMPARISONS = ("=", "<>", "!=", "<", "<=", ">", ">=")


def check_version(version: str) -> str:
    if version not in n.VERSIONS:
        raise SqlParseError(f"unsupported SQL version {version!r}: expected one of {', '.join(n.VERSIONS)}")
    return version


class Parser:
    def __init__(self, text: str, version: str, start: int = 0) -> None:
        self.text = text
        self.version = check_version(version)
        self.v2 = version != n.V1
        self.numbers = Numbers(self.v2)
        self.lexer = Lexer(text, start)
        self.functions: list[str] = []
        self.allow_member_star = False

    # -- helpers --------------------------------------------------------------

    def error(self, message: str, token: Token | None = None) -> SqlParseError:
        token = token or self.lexer.peek()
        return SqlParseError(message, token.pos, self.text)

    def expected(self, what: str, token: Token | None = None) -> SqlParseError:
        token = token or self.lexer.peek()
        return self.error(f"expected {what} but found {token.describe()}", token)

    def peek(self, ahead: int = 0) -> Token:
        return self.lexer.peek(ahead)

    def next(self) -> Token:
        return self.lexer.next()

    def expect_op(self, op: str) -> Token:
        token = self.peek()
        if not token.is_op(op):
            raise self.expected(f"'{op}'")
        return self.next()

    def expect_kw(self, word: str) -> Token:
        token = self.peek()
        if not token.is_kw(word):
            raise self.expected(word)
        return self.next()

    def need_v2(self, what: str, token: Token) -> None:
        if not self.v2:
            raise self.error(f"{what} requires SQL version 2016-03-23 or later "
                             f"(this statement uses {self.version})", token)

    # -- statements -----------------------------------------------------------

    def statement(self) -> n.Select:
        select = self.select(nested=False)
        if self.peek().kind != EOF:
            raise self.expected("WHERE or the end of the statement")
        select.functions = set(self.functions)
        select.dynamodb_calls = self.functions.count("get_dynamodb")
        return select

    def select(self, nested: bool) -> n.Select:
        self.expect_kw("SELECT")
        value = False
        token = self.peek()
        if token.is_kw("VALUE") and self._value_is_keyword():
            self.next()
            value = True
        items = [self.select_item(1)]
        while self.peek().is_op(","):
            self.next()
            items.append(self.select_item(len(items) + 1))
        if value and (len(items) != 1 or items[0].alias is not None):
            raise self.error("SELECT VALUE takes exactly one expression, without AS", token)
        if value and isinstance(items[0].expr, n.MemberStar):
            raise self.error("SELECT VALUE cannot select path.*", token)
        from_token = self.expect_kw("FROM")
        source = topic_filter = None
        if nested:
            source = self.expression()
        else:
            topic = self.lexer.read_topic(from_token.end)
            problem = filter_problem(topic.text)
            if problem:
                raise self.error(f"invalid topic filter {topic.text!r} in FROM clause: {problem}", topic)
            topic_filter = topic.text
        where = None
        if self.peek().is_kw("WHERE"):
            self.next()
            where = self.expression()
        return n.Select(items, value, source, where, topic_filter, nested)

    def _value_is_keyword(self) -> bool:
        """VALUE right after SELECT is the keyword unless it is used as an attribute name."""
        after = self.peek(1)
        if after.kind == EOF or after.is_kw("FROM", "AS", "AND", "OR", "IN", "CONTAINS"):
            return False
        if after.is_op("*"):
            follower = self.peek(2)
            return follower.is_kw("FROM") or follower.is_op(",")
        if after.is_op("["):      # SELECT VALUE [a, b] (array literal) or SELECT value[0] (index)
            return self._array_literal_ahead(1)
        return not after.is_op(",", ".", "[", "=", "<>", "!=", "<", "<=", ">", ">=", "+", "-", "/", "%", ")")

    def _array_literal_ahead(self, ahead: int) -> bool:
        """Whether the '[' at lookahead `ahead` holds a top-level comma (or nothing) before its ']'."""
        depth, i = 0, ahead
        while True:
            token = self.peek(i)
            if token.kind == EOF:
                return False
            if token.is_op("[", "(", "{"):
                depth += 1
            elif token.is_op("]", ")", "}"):
                depth -= 1
                if depth == 0:
                    return i == ahead + 1
            elif depth == 1 and token.is_op(","):
                return True
            i += 1

    def select_item(self, position: int) -> n.SelectItem:
        token = self.peek()
        if token.is_op("*"):
            self.next()
            expr: n.Node = n.Star()
        else:
            expr = self.expression(allow_member_star=True)
        alias = None
        if self.peek().is_kw("AS"):
            self.next()
            alias = [self.name("an alias after AS")]
            while self.peek().is_op("."):
                self.next()
                alias.append(self.name("an alias segment after '.'"))
        if alias is not None:
            key = alias
        else:
            name = expr.output_name
            key = [name if name is not None else f"_{position}"]
        return n.SelectItem(expr, alias, key, token.pos)

    def name(self, what: str) -> str:
        token = self.peek()
        if token.kind == WORD and token.upper not in RESERVED:
            self.next()
            return token.text
        if token.kind == STR:      # AS 'my key'
            self.next()
            return token.text
        raise self.expected(what)

    # -- expressions ----------------------------------------------------------

    def expression(self, allow_member_star: bool = False) -> n.Node:
        self.allow_member_star = allow_member_star
        return self.or_expr()

    def or_expr(self) -> n.Node:
        left = self.and_expr()
        while self.peek().is_kw("OR"):
            self.next()
            left = n.BinaryOp("OR", left, self.and_expr())
        return left

    def and_expr(self) -> n.Node:
        left = self.not_expr()
        while self.peek().is_kw("AND"):
            self.next()
            left = n.BinaryOp("AND", left, self.not_expr())
        return left

    def not_expr(self) -> n.Node:
        if self.peek().is_kw("NOT"):
            self.next()
            return n.Not(self.not_expr())
        return self.comparison()

    def comparison(self) -> n.Node:
        left = self.additive()
        while True:
            token = self.peek()
            if token.kind == OP and token.text in COMPARISONS:
                op = token.text
            elif token.is_kw("IN", "CONTAINS"):
                op = token.upper
            else:
                return left
            self.next()
            left = n.BinaryOp(op, left, self.additive())

    def additive(self) -> n.Node:
        left = self.multiplicative()
        while self.peek().is_op("+", "-"):
            op = self.next().text
            left = n.BinaryOp(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> n.Node:
        left = self.unary()
        while self.peek().is_op("*", "/", "%"):
            op = self.next().text
            left = n.BinaryOp(op, left, self.unary())
        return left

    def unary(self) -> n.Node:
        token = self.peek()
        if token.is_op("-"):
            self.next()
            operand = self.unary()
            if isinstance(operand, n.Literal) and isinstance(operand.value, (int, Decimal)) \
                    and not isinstance(operand.value, bool):
                return n.Literal(-operand.value)
            return n.Negate(operand)
        if token.is_op("+"):
            self.next()
            return self.unary()
        return self.postfix(self.primary())

    def postfix(self, node: n.Node) -> n.Node:
        while True:
            token = self.peek()
            if token.is_op("."):
                self.next()
                name_token = self.peek()
                if name_token.is_op("*") and self.allow_member_star:
                    self.next()
                    return n.MemberStar(node)
                if name_token.kind != WORD:
                    raise self.expected("an attribute name after '.' (use get() for names with "
                                        "digits first or hyphens)")
                self.next()
                node = n.Member(node, name_token.text)
            elif token.is_op("["):
                self.next()
                index = self.or_expr()
                self.expect_op("]")
                node = n.Index(node, index)
            else:
                return node

    def primary(self) -> n.Node:
        token = self.peek()
        if token.kind == NUM:
            self.next()
            return n.Literal(self.number(token))
        if token.kind == STR:
            self.next()
            return n.Literal(token.text)
        if token.kind == OP:
            if token.text == "(":
                return self.parenthesized()
            if token.text == "[":
                return self.array_literal()
            if token.text == "{":
                return self.object_literal()
            if token.text == "*":
                self.next()
                return n.Star()
            raise self.expected("an expression")
        if token.kind == WORD:
            upper = token.upper
            if upper == "TRUE" or upper == "FALSE":
                self.next()
                return n.Literal(upper == "TRUE")
            if upper == "NULL":
                self.next()
                return n.Literal(None)
            if upper == "CASE":
                return self.case()
            if self.peek(1).is_op("(") and upper not in RESERVED:
                return self.call()
            if upper in RESERVED:
                raise self.expected("an expression")
            self.next()
            return n.Attribute(token.text)
        raise self.expected("an expression")

    def number(self, token: Token) -> Any:
        text = token.text
        if text.isdigit():
            return int(text)
        return self.numbers.dec(DECIMAL128.create_decimal(text))

    def parenthesized(self) -> n.Node:
        open_token = self.next()
        if self.peek().is_kw("SELECT"):
            self.need_v2("a nested SELECT", self.peek())
            saved = self.allow_member_star
            select = self.select(nested=True)
            self.allow_member_star = saved
            self.expect_op(")")
            return n.SubQuery(select)
        saved = self.allow_member_star
        inner = self.or_expr()
        self.allow_member_star = saved
        if not self.peek().is_op(")"):
            raise self.expected(f"')' to close the '(' at column {open_token.pos + 1}")
        self.next()
        return inner

    def array_literal(self) -> n.Node:
        token = self.next()
        self.need_v2("an array literal", token)
        items: list[n.Node] = []
        if not self.peek().is_op("]"):
            items.append(self.or_expr())
            while self.peek().is_op(","):
                self.next()
                items.append(self.or_expr())
        self.expect_op("]")
        return n.ArrayLiteral(items)

    def object_literal(self) -> n.Node:
        token = self.next()
        self.need_v2("an object literal", token)
        pairs: list[tuple[str, n.Node]] = []
        if not self.peek().is_op("}"):
            while True:
                key = self.peek()
                if key.kind not in (STR, WORD):
                    raise self.expected("a quoted key in the object literal")
                self.next()
                self.expect_op(":")
                pairs.append((key.text, self.or_expr()))
                if not self.peek().is_op(","):
                    break
                self.next()
        self.expect_op("}")
        return n.ObjectLiteral(pairs)

    def case(self) -> n.Node:
        self.next()
        subject = None
        if not self.peek().is_kw("WHEN"):
            subject = self.or_expr()
        whens = []
        while self.peek().is_kw("WHEN"):
            self.next()
            test = self.or_expr()
            self.expect_kw("THEN")
            whens.append((test, self.or_expr()))
        if not whens:
            raise self.expected("WHEN (a CASE needs at least one WHEN clause)")
        default = None
        if self.peek().is_kw("ELSE"):
            self.next()
            default = self.or_expr()
        if not self.peek().is_kw("END"):
            raise self.expected("WHEN, ELSE or END to close the CASE")
        self.next()
        return n.Case(subject, whens, default)

    def call(self) -> n.Node:
        name_token = self.next()
        name = name_token.text
        spec = FUNCTIONS.get(name.lower())
        if spec is None:
            raise self.error(f"unknown function {name}()", name_token)
        if spec.since_v2:
            self.need_v2(f"function {spec.name}()", name_token)
        self.expect_op("(")
        args: list[n.Node] = []
        saved = self.allow_member_star
        self.allow_member_star = False
        if spec.name == "cast":
            args = [self.or_expr()]
            self.expect_kw("AS")
            type_token = self.peek()
            if type_token.kind != WORD or type_token.upper not in CAST_TYPES:
                raise self.expected("a type after AS (Int, Decimal, Bool, Boolean, String, ...)")
            self.next()
            args.append(n.Literal(CAST_TYPES[type_token.upper]))
        elif not self.peek().is_op(")"):
            args.append(self.or_expr())
            while self.peek().is_op(","):
                self.next()
                args.append(self.or_expr())
        self.allow_member_star = saved
        self.expect_op(")")
        if not spec.min_args <= len(args) <= spec.max_args:
            if spec.min_args == spec.max_args:
                wanted = str(spec.min_args)
            elif spec.max_args >= 99:
                wanted = f"at least {spec.min_args}"
            else:
                wanted = f"{spec.min_args} to {spec.max_args}"
            raise self.error(f"function {spec.name}() takes {wanted} argument"
                             f"{'' if wanted == '1' else 's'}, got {len(args)}", name_token)
        if spec.check is not None:
            problem = spec.check(args)
            if problem:
                raise self.error(f"{spec.name}(): {problem}", name_token)
        self.functions.append(spec.name)
        return n.Call(name, spec, args)


def parse_select(text: str, version: str) -> n.Select:
    try:
        return Parser(text, version).statement()
    except RecursionError:
        raise SqlParseError("the statement nests too deeply") from None


def parse_expression_at(text: str, start: int, version: str) -> tuple[n.Node, int, list[str]]:
    """One expression starting at `start`; returns it, the offset just past it,
    and the functions it calls (substitution templates)."""
    parser = Parser(text, version, start)
    try:
        node = parser.or_expr()
    except RecursionError:
        raise SqlParseError("the expression nests too deeply", start, text) from None
    end = parser.peek().pos
    return node, end, parser.functions

