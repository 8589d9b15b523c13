#!/usr/bin/env python3
"""Differential test of `tethys cron next` against Quartz 2.3.2's CronExpression.

    python3 tests/quartz/quartz_diff.py [--build build] [-n 4000] [--seed 1] [--tethys PATH]

1. Generates N random Quartz-form expressions (6 and 7 fields), deterministic for a seed,
   with zones that keep one UTC offset (UTC, Etc/GMT+-N, and named zones checked with
   zoneinfo to have had a fixed offset from FROM on), FROM between 1972 and 2100 and COUNT
   1..10.  Most vectors (about 80%) use only constructs where Quartz and spec/cron.md agree,
   so the run proves equality; the rest exercise each kind of difference listed in
   conformance/cron/QUARTZ-DIFFERENCES.md, plus expressions both sides must reject.
2. Runs them through QuartzNext (tests/quartz/QuartzNext.java, compiled into
   <build>/quartz/ when the class is missing or older than the source) and through
   `<tethys> cron next --tsv`, in batches, both speaking check.py's --tsv-cmd protocol.
3. Compares each vector.  A disagreement must be explained by exactly one documented kind
   (KINDS below): the construct must be present in the expression, the difference must go
   the documented way, and for most kinds a rewritten expression that avoids the construct
   must make the two engines agree again (e.g. for `JAN-DEC/3`, Quartz's answer equals
   tethys's answer for `JAN-DEC`, and tethys's answer equals Quartz's for `1-12/3`).
   Those rewrites are run as a second batch.  Anything else is "unexplained".
4. Prints a table, up to 20 unexplained vectors in full, and finally
   `quartz-diff: N compared, A agree, D documented differences, U unexplained`;
   exits 1 if U > 0 or if tethys crashes or breaks the protocol.

Python 3.11 standard library only; the functions are importable by tests.  The file also
holds a small model of the spec (Quartz form, fixed-offset zones only), used to say which
side the spec supports when a vector is unexplained, and as a stand-in engine for testing
this script (`--model-tsv` turns the script into a TSV filter speaking the protocol).
"""

import argparse
import concurrent.futures as cf
import datetime as dt
import os
import random
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QUARTZ_JARS = ["/usr/share/java/quartz2.jar", "/usr/share/java/slf4j-api.jar"]

# ---------------------------------------------------------------------------------------
# The Quartz form of spec/cron.md: fields, bounds, names.
# ---------------------------------------------------------------------------------------

SEC, MIN, HOUR, DOM, MON, DOW, YEAR = range(7)
FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")
LO = (0, 0, 0, 1, 1, 1, 1970)
HI = (59, 59, 23, 31, 12, 7, 2199)
SIZE = (60, 60, 24, 31, 12, 7, 230)  # largest step allowed (spec section 3)
MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
DOW_NAMES = {n: i + 1 for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())}
SPEC_END_YEAR = 2199

TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})")


class SpecError(Exception):
    """An expression spec/cron.md rejects.  category: syntax (malformed item, trailing
    garbage, unknown name, empty item), range (value out of range), step0, steprange,
    star-list (* as a list item), qmark (? where not allowed), day-both-q,
    day-both-restricted, nfields."""

    def __init__(self, fld, category, text, msg):
        super().__init__(msg)
        self.field = fld
        self.category = category
        self.text = text


def _names(f):
    return MONTH_NAMES if f == MON else DOW_NAMES if f == DOW else None


def _value(tok, f):
    if RE_DIGITS.fullmatch(tok):
        v = int(tok)
    else:
        names = _names(f)
        if names is None or tok not in names:
            raise SpecError(f, "syntax", tok, f"{FIELD_NAMES[f]}: unknown name {tok!r}")
        v = names[tok]
    if not LO[f] <= v <= HI[f]:
        raise SpecError(f, "range", tok, f"{FIELD_NAMES[f]}: {tok} is out of range {LO[f]}-{HI[f]}")
    return v


def _step(tok, f):
    n = int(tok)
    if n == 0:
        raise SpecError(f, "step0", tok, f"{FIELD_NAMES[f]}: step of 0")
    if n > SIZE[f]:
        raise SpecError(f, "steprange", tok, f"{FIELD_NAMES[f]}: step {n} is larger than {SIZE[f]}")
    return n


def _span(a, b, n, f):
    """Values a..b (wrapping when b < a), every n-th."""
    vals = list(range(a, b + 1)) if a <= b else list(range(a, HI[f] + 1)) + list(range(LO[f], b + 1))
    return set(vals[::n])


# ASCII digits only: Python's \d would also take other scripts' digits.
RE_DIGITS = re.compile(r"[0-9]+")
_VAL = r"([0-9]+|[A-Z]+)"
RE_ITEM = re.compile(rf"{_VAL}(?:-{_VAL})?(?:/([0-9]+))?")
RE_STAR_STEP = re.compile(r"\*/([0-9]+)")
RE_DOM_LAST = re.compile(r"L-([0-9]+)")
RE_DOM_NEAR = re.compile(r"([0-9]+)W")
RE_DOW_LAST = re.compile(r"([0-9]+|[A-Z]{3})L")
RE_DOW_NTH = re.compile(r"([0-9]+|[A-Z]{3})#([0-9]+)")


def parse_item(item, f):
    """One list item (upper case) of field f -> ('set', values) or a day special:
    ('L', n) for L / L-n, ('LW',), ('W', n), ('nL', d), ('nth', d, k).  Raises SpecError."""
    if item == "":
        raise SpecError(f, "syntax", item, f"{FIELD_NAMES[f]}: empty list item")
    if item == "*":
        raise SpecError(f, "star-list", item, f"{FIELD_NAMES[f]}: '*' cannot be a list item")
    if item == "?":
        raise SpecError(f, "qmark", item, f"{FIELD_NAMES[f]}: '?' cannot be a list item")
    m = RE_STAR_STEP.fullmatch(item)
    if m:
        return ("set", set(range(LO[f], HI[f] + 1, _step(m[1], f))))
    if f == DOM:
        if item == "L":
            return ("L", 0)
        if item == "LW":
            return ("LW",)
        m = RE_DOM_LAST.fullmatch(item)
        if m:
            n = int(m[1])
            if n > 30:
                raise SpecError(f, "range", item, f"day-of-month: L-{n}: offset out of range 0-30")
            return ("L", n)
        m = RE_DOM_NEAR.fullmatch(item)
        if m:
            n = int(m[1])
            if not 1 <= n <= 31:
                raise SpecError(f, "range", item, f"day-of-month: {item}: day out of range 1-31")
            return ("W", n)
    if f == DOW:
        if item == "L":
            return ("set", {7})
        m = RE_DOW_LAST.fullmatch(item)
        if m:
            return ("nL", _value(m[1], f))
        m = RE_DOW_NTH.fullmatch(item)
        if m:
            d, k = _value(m[1], f), int(m[2])
            if not 1 <= k <= 5:
                raise SpecError(f, "range", item, f"day-of-week: {item}: # needs 1-5")
            return ("nth", d, k)
    m = RE_ITEM.fullmatch(item)
    if not m:
        raise SpecError(f, "syntax", item, f"{FIELD_NAMES[f]}: malformed item {item!r}")
    a = _value(m[1], f)
    b = _value(m[2], f) if m[2] else None
    n = _step(m[3], f) if m[3] else None
    if b is None and n is None:
        return ("set", {a})
    if b is None:
        return ("set", _span(a, HI[f], n, f))
    return ("set", _span(a, b, n or 1, f))


@dataclass
class Field:
    kind: str                     # 'star', 'qmark' or 'list'
    values: set = field(default_factory=set)
    specials: list = field(default_factory=list)


def parse_field(text, f):
    if text == "*":
        return Field("star", set(range(LO[f], HI[f] + 1)))
    if text == "?":
        if f not in (DOM, DOW):
            raise SpecError(f, "qmark", text, f"{FIELD_NAMES[f]}: '?' only in day-of-month or day-of-week")
        return Field("qmark")
    fl = Field("list")
    for item in text.split(","):
        r = parse_item(item, f)
        if r[0] == "set":
            fl.values |= r[1]
        else:
            fl.specials.append(r)
    return fl


@dataclass
class Expr:
    fields: list      # Field per field (a 6-field expression gets a '*' year)
    nfields: int

    @property
    def hours_all(self):
        return len(self.fields[HOUR].values) == 24


def split_fields(expr):
    """The fields of an expression, upper case (spec: blanks are spaces and tabs)."""
    return [t for t in re.split(r"[ \t]+", expr.upper()) if t]


def parse_expr(expr):
    """Parse a Quartz-form expression per spec/cron.md; raises SpecError."""
    bad = re.search(r"[^\x20-\x7e\t]", expr)
    if bad:
        raise SpecError(None, "syntax", bad[0], f"unexpected character {bad[0]!r}")
    toks = split_fields(expr)
    if len(toks) not in (6, 7):
        raise SpecError(None, "nfields", expr, f"expected 6 or 7 fields, got {len(toks)}")
    fields = [parse_field(t, i) for i, t in enumerate(toks)]
    if len(toks) == 6:
        fields.append(parse_field("*", YEAR))
    dom, dow = fields[DOM], fields[DOW]
    if dom.kind == "qmark" and dow.kind == "qmark":
        raise SpecError(DOM, "day-both-q", "?", "'?' in both day-of-month and day-of-week")
    if dom.kind == "list" and dow.kind == "list":
        raise SpecError(DOM, "day-both-restricted", toks[DOM],
                        "use ? in day-of-month or day-of-week")
    return Expr(fields, len(toks))


def item_problems(expr):
    """Every (field, item, category) of an expression's items that the spec rejects."""
    out = []
    for f, text in enumerate(split_fields(expr)[:7]):
        text = re.sub(r"[^\x20-\x7e]", "\x00", text)
        if text in ("*", "?"):
            continue
        for item in text.split(","):
            try:
                parse_item(item, f)
            except SpecError as e:
                out.append((f, item, e.category))
    return out


# ---------------------------------------------------------------------------------------
# Spec model: next fire times for fixed-offset zones (a third opinion, and a test engine).
# ---------------------------------------------------------------------------------------

_ORD1970 = dt.date(1970, 1, 1).toordinal()
_END_DAY = dt.date(SPEC_END_YEAR + 1, 1, 1).toordinal() - _ORD1970


def _days_in_month(y, m):
    return (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.date(y, m, 1)).days


def _qdow(d):
    """Quartz day-of-week of a date: 1 = Sunday .. 7 = Saturday."""
    return (d.weekday() + 1) % 7 + 1


def _nearest_weekday(y, m, n, ldom):
    if n > ldom:
        return None
    w = _qdow(dt.date(y, m, n))
    if w == 7:                      # Saturday: Friday before, or Monday after on the 1st
        return n + 2 if n == 1 else n - 1
    if w == 1:                      # Sunday: Monday after, or Friday before on the last day
        return n - 2 if n == ldom else n + 1
    return n


def day_matches(e, d):
    dom, dow = e.fields[DOM], e.fields[DOW]
    ldom = _days_in_month(d.year, d.month)
    if dom.kind == "list":                       # day-of-month decides
        if d.day in dom.values:
            return True
        for s in dom.specials:
            if s[0] == "L" and ldom - s[1] >= 1 and d.day == ldom - s[1]:
                return True
            if s[0] == "LW" and d.day == _nearest_weekday(d.year, d.month, ldom, ldom):
                return True
            if s[0] == "W" and d.day == _nearest_weekday(d.year, d.month, s[1], ldom):
                return True
        return False
    if dow.kind == "list":                       # day-of-week decides
        w = _qdow(d)
        if w in dow.values:
            return True
        for s in dow.specials:
            if s[0] == "nL" and w == s[1] and d.day + 7 > ldom:
                return True
            if s[0] == "nth" and w == s[1] and (d.day - 1) // 7 + 1 == s[2]:
                return True
        return False
    return True


def _first_tod(hs, ms, ss, tod):
    """The earliest second of the day >= tod whose h, m, s are in the sorted lists."""
    h0, r = divmod(tod, 3600)
    m0, s0 = divmod(r, 60)
    for h in hs:
        if h < h0:
            continue
        if h > h0:
            return h * 3600 + ms[0] * 60 + ss[0]
        for m in ms:
            if m < m0:
                continue
            if m > m0:
                return h * 3600 + m * 60 + ss[0]
            for s in ss:
                if s >= s0:
                    return h * 3600 + m * 60 + s
    return None


def model_next(e, off, after):
    """next(e, zone, after) for a zone at fixed UTC offset `off` seconds: epoch or None."""
    hs, ms, ss = (sorted(e.fields[i].values) for i in (HOUR, MIN, SEC))
    years, months = e.fields[YEAR].values, e.fields[MON].values
    local = after + off + 1
    day, tod = divmod(local, 86400)
    while day < _END_DAY:
        d = dt.date.fromordinal(_ORD1970 + day)
        if d.year not in years:
            nxt = [y for y in years if y > d.year]
            if not nxt:
                return None
            day, tod = dt.date(min(nxt), 1, 1).toordinal() - _ORD1970, 0
            continue
        if d.month not in months:
            nxt = [m for m in months if m > d.month]
            nd = dt.date(d.year, min(nxt), 1) if nxt else dt.date(d.year + 1, 1, 1)
            if nd.year > SPEC_END_YEAR:
                return None
            day, tod = nd.toordinal() - _ORD1970, 0
            continue
        if day_matches(e, d):
            r = _first_tod(hs, ms, ss, tod)
            if r is not None:
                return day * 86400 + r - off
        day, tod = day + 1, 0
    return None


# Zones: the offset a zone keeps from some instant on (weekly samples, 1970..2200).
_FIXED_CACHE = {}


def zone_fixed_since(tz):
    """(offset, since): the zone's UTC offset is `offset` at every sample from `since`
    to 2200; None if the zone is unknown."""
    if tz in _FIXED_CACHE:
        return _FIXED_CACHE[tz]
    try:
        z = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        _FIXED_CACHE[tz] = None
        return None
    t_end = int(dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    last = int(dt.datetime(2200, 1, 1, tzinfo=z).utcoffset().total_seconds())
    since = -86400 * 365 * 2
    t = t_end
    while t > since:
        o = int(dt.datetime.fromtimestamp(t, z).utcoffset().total_seconds())
        if o != last:
            break
        t -= 7 * 86400
    res = (last, t + 7 * 86400 + 1)
    _FIXED_CACHE[tz] = res
    return res


def fixed_offset(tz, frm):
    """The zone's offset if it is constant from instant frm to 2200, else None."""
    r = zone_fixed_since(tz)
    if r is None or frm < r[1]:
        return None
    return r[0]


def fmt_time(t, off):
    """Spec section 8 text of instant t at offset off."""
    s = dt.datetime.fromtimestamp(t, dt.timezone(dt.timedelta(seconds=off))).isoformat()
    return s


def parse_time(s):
    """(epoch, offset) or None if s is not a spec section 8 time."""
    if not TIME_RE.fullmatch(s):
        return None
    try:
        a = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(a.timestamp()), int(a.utcoffset().total_seconds())


def parse_from(s):
    a = dt.datetime.fromisoformat(s.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return int(a.timestamp())


def model_answer(expr, tz, frm, count):
    """(status, payload) from the spec model; status ERROR when it cannot judge."""
    try:
        t0 = parse_from(frm)
    except ValueError:
        return "ERROR", "bad FROM"
    if t0 < T1972:
        return "ERROR", "FROM is before 1972-01-01T00:00:00Z (spec section 8)"
    off = fixed_offset(tz, t0)
    if off is None:
        return "ERROR", f"model: zone {tz} not at a fixed offset from {frm}"
    nf = len(split_fields(expr))
    if nf == 5 or expr.strip().startswith("@"):
        return "ERROR", "model: only the Quartz form"
    if nf not in (6, 7):
        return "INVALID", f"expected 6 or 7 fields, got {nf}"
    try:
        e = parse_expr(expr)
    except SpecError as ex:
        return "INVALID", str(ex)
    out, t = [], t0
    for _ in range(int(count)):
        t = model_next(e, off, t)
        if t is None:
            break
        out.append(fmt_time(t, off))
    return "OK", ",".join(out)


def model_tsv_filter(inp, outp):
    """The spec model as a --tsv-cmd filter."""
    for line in inp:
        f = line.rstrip("\r\n").split("\t")
        if len(f) < 4:
            outp.write(line.rstrip("\r\n") + "\tERROR\tbad line\n")
            continue
        st, pay = model_answer(f[0], f[1], f[2], f[3])
        outp.write(f"{f[0]}\t{f[1]}\t{f[2]}\t{f[3]}\t{st}\t{pay}\n")
        outp.flush()


# ---------------------------------------------------------------------------------------
# Vector generator.
# ---------------------------------------------------------------------------------------

@dataclass
class Vector:
    expr: str
    tz: str
    frm: str
    count: int
    gen: str = "clean"     # what the generator meant to exercise (statistics only)

    def key(self):
        return (self.expr, self.tz, self.frm, self.count)


T1972 = int(dt.datetime(1972, 1, 1, tzinfo=dt.timezone.utc).timestamp())
T2101 = int(dt.datetime(2101, 1, 1, tzinfo=dt.timezone.utc).timestamp())
ETC_ZONES = ["UTC"] + [f"Etc/GMT{'+' if n > 0 else '-'}{abs(n)}" for n in range(-14, 13) if n]
NAMED_FIXED_ZONES = ["Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Pacific/Kiritimati"]


class Gen:
    """Random expression pieces.  Every method draws from self.r only, so a seed
    determines the whole corpus."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    # -- small helpers ------------------------------------------------------------------
    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq, weights=None):
        return self.r.choices(seq, weights)[0] if weights else self.r.choice(seq)

    def case(self, s):
        k = self.r.random()
        if k < 0.6:
            return s
        if k < 0.85:
            return s.lower()
        return "".join(c.lower() if self.chance(0.5) else c for c in s)

    def num(self, v):
        if self.chance(0.07):
            return "0" * self.r.randint(1, 2) + str(v)
        return str(v)

    def value(self, f, v, names_ok=True):
        names = _names(f)
        if names and names_ok and self.chance(0.4 if f == DOW else 0.3):
            return self.case([k for k, n in names.items() if n == v][0])
        return self.num(v)

    def step(self, f, allow_size=True):
        """A step that Quartz also accepts: at most 59 / 23 for */n and a/n in SEC, MIN,
        HOUR (Quartz rejects the field size there), the field size elsewhere."""
        top = SIZE[f]
        if not allow_size and f in (SEC, MIN, HOUR):
            top -= 1
        if f == YEAR:
            top = 40 if self.chance(0.9) else 230
        if self.chance(0.7):
            return self.r.randint(1, min(top, 7))
        return self.r.randint(1, top)

    def rand_val(self, f, lo=None, hi=None):
        return self.r.randint(LO[f] if lo is None else lo, HI[f] if hi is None else hi)

    # -- items where Quartz and the spec agree -------------------------------------------
    def clean_item(self, f, yr=None):
        """One list item: value, range (maybe wrapping), a/n, a-b/n, */n.  Names only
        without steps and never mixed with numbers in a range."""
        lo, hi = (yr if yr else (LO[f], HI[f]))
        k = self.pick(["val", "range", "wrap", "a/n", "a-b/n", "*/n"],
                      [30, 22, 8 if f != YEAR else 0, 10, 10, 8])
        if k == "val":
            return self.value(f, self.rand_val(f, lo, hi))
        if k == "*/n":
            return "*/" + self.num(self.step(f, allow_size=False))
        if k in ("range", "wrap", "a-b/n"):
            a, b = sorted((self.rand_val(f, lo, hi), self.rand_val(f, lo, hi)))
            if k == "wrap" and a != b:
                a, b = b, a
            if k == "a-b/n" and f != YEAR and self.chance(0.3) and a != b:
                a, b = b, a                         # stepped wrap
            named = _names(f) and k != "a-b/n" and self.chance(0.35)
            if named:
                s = self.case(_name_of(f, a)) + "-" + self.case(_name_of(f, b))
            else:
                s = self.num(a) + "-" + self.num(b)
            if k == "a-b/n":
                s += "/" + self.num(self.step(f))
            return s
        a = self.rand_val(f, lo, hi)                 # a/n
        return self.num(a) + "/" + self.num(self.step(f, allow_size=False))

    def clean_list(self, f, yr=None, nmax=4):
        return ",".join(self.clean_item(f, yr) for _ in range(self.r.randint(2, nmax)))

    def clean_field(self, f, yr=None):
        if f == SEC:
            k = self.pick(["0", "one", "*", "item", "list"], [35, 15, 8, 22, 20])
        elif f == MIN:
            k = self.pick(["0", "one", "*", "item", "list"], [20, 20, 15, 25, 20])
        elif f == HOUR:
            k = self.pick(["0", "one", "*", "item", "list"], [10, 25, 20, 25, 20])
        elif f == MON:
            k = self.pick(["one", "*", "item", "list"], [10, 50, 25, 15])
        else:
            k = self.pick(["one", "*", "item", "list"], [25, 20, 35, 20])
        if k == "0":
            return self.num(0)
        if k == "*":
            return "*"
        if k == "one":
            lo, hi = yr if yr else (LO[f], HI[f])
            return self.value(f, self.rand_val(f, lo, hi))
        if k == "item":
            return self.clean_item(f, yr)
        return self.clean_list(f, yr)

    def clean_dom_special(self):
        k = self.pick(["L", "L-n", "LW", "nW"], [3, 3, 2, 4])
        if k == "L":
            return self.case("L")
        if k == "L-n":
            return self.case("L") + "-" + self.num(self.r.randint(0, 30))
        if k == "LW":
            return self.case("LW")
        return self.num(self.r.randint(1, 28)) + self.case("W")

    def clean_dow_special(self):
        k = self.pick(["L", "nL", "n#k"], [2, 4, 5])
        if k == "L":
            return self.case("L")
        d = self.value(DOW, self.r.randint(1, 7))
        if k == "nL":
            return d + self.case("L")
        return d + "#" + self.num(self.r.randint(1, 5))

    def day_pair(self):
        k = self.pick(["dom", "dom*", "dow*", "dow", "domsp", "dowsp"], [34, 9, 8, 31, 10, 8])
        if k == "dom":
            return self.clean_field(DOM), "?"
        if k == "dom*":
            return "*", "?"
        if k == "dow*":
            return "?", "*"
        if k == "dow":
            return "?", self.clean_field(DOW)
        if k == "domsp":
            return self.clean_dom_special(), "?"
        return "?", self.clean_dow_special()

    def year_field(self, from_year, beyond=False):
        """A year field whose years mostly lie within Quartz's reach (<= this year + 100)."""
        hi = 2199 if beyond else 2126
        lo = max(1970, from_year - 5)
        lo, hi = min(lo, hi), hi
        near = (lo, min(hi, max(lo, from_year + 40)))
        k = self.pick(["*", "one", "item", "list"], [15, 30, 35, 20])
        if k == "*":
            return "*"
        if k == "one":
            return str(self.rand_val(YEAR, *near))
        if k == "item":
            return self.clean_item(YEAR, near if self.chance(0.8) else (lo, hi))
        return self.clean_list(YEAR, near)

    def join(self, fields):
        if self.chance(0.12):
            s = "".join(x + " " * self.r.randint(1, 3) for x in fields).rstrip()
        else:
            s = " ".join(fields)
        if self.chance(0.04):
            s = " " * self.r.randint(1, 2) + s + " " * self.r.randint(0, 2)
        return s

    def base_fields(self, from_year, seven=None, beyond=False, sparse=False):
        """Fields of a clean expression; sparse: one time of day (or a few), so that
        COUNT fire times span days or months."""
        dom, dow = self.day_pair()
        if sparse:
            tod = [self.num(self.rand_val(SEC)) if self.chance(0.3) else "0",
                   self.num(self.rand_val(MIN)),
                   self.num(self.rand_val(HOUR)) if self.chance(0.7) else
                   f"{self.rand_val(HOUR, 0, 11)},{self.rand_val(HOUR, 12, 23)}"]
        else:
            tod = [self.clean_field(SEC), self.clean_field(MIN), self.clean_field(HOUR)]
        f = tod + [dom, self.clean_field(MON), dow]
        if seven if seven is not None else self.chance(0.35):
            f.append(self.year_field(from_year, beyond))
        return f

    # -- zones and instants ---------------------------------------------------------------
    def zone_and_from(self):
        tz = self.pick(["utc", "etc", "named"], [20, 65, 15])
        tz = "UTC" if tz == "utc" else self.pick(ETC_ZONES) if tz == "etc" else self.pick(NAMED_FIXED_ZONES)
        off, since = zone_fixed_since(tz)
        lo = max(T1972, since)
        t = self.r.randint(lo, T2101 - 1)
        k = self.r.random()
        if k < 0.15:                                   # on a local day boundary
            t -= (t + off) % 86400
        elif k < 0.25:                                 # last second of a local day
            t += 86399 - (t + off) % 86400
        elif k < 0.35:                                 # on a whole minute
            t -= (t + off) % 60
        if t < lo:
            t += 86400
        shown = self.pick([0, off, off, self.pick([3600 * 9, -3600 * 3 - 1800, 20700, -36000])])
        s = fmt_time(t, shown)
        if shown == 0 and self.chance(0.5):
            s = s[:-6] + "Z"
        return tz, s, dt.datetime.fromtimestamp(t + off, dt.timezone.utc).year


def _name_of(f, v):
    return [k for k, n in _names(f).items() if n == v][0]


def _with(fields, i, text):
    g = list(fields)
    while len(g) <= i:
        g.append("*")
    g[i] = text
    return g


def _quirk(g, kind, fy):
    """Fields of an expression carrying one construct of a documented kind."""
    r = g.r
    if kind == "named-step":
        if g.chance(0.5):
            a, b = r.randint(1, 12), r.randint(1, 12)
            item = g.case(_name_of(MON, a)) + ("-" + g.case(_name_of(MON, b)) if g.chance(0.7) else "")
            return _with(g.base_fields(fy, sparse=g.chance(0.7)), MON, item + "/" + str(r.randint(2, 5)))
        a, b = r.randint(1, 7), r.randint(1, 7)
        item = g.case(_name_of(DOW, a)) + ("-" + g.case(_name_of(DOW, b)) if g.chance(0.7) else "")
        f = g.base_fields(fy, sparse=g.chance(0.7))
        f[DOM] = "?"
        return _with(f, DOW, item + "/" + str(r.randint(2, 4)))
    if kind == "specials-list":
        f = g.base_fields(fy, sparse=g.chance(0.5))
        if g.chance(0.5):
            sp = [g.case("L"), g.case("L") + "-" + str(r.randint(0, 10)), g.case("LW"),
                  str(r.randint(1, 28)) + g.case("W"), str(r.randint(1, 28)) + g.case("W")]
            items = [g.pick(sp)] + [g.pick(sp) if g.chance(0.3) else g.clean_item(DOM)
                                    for _ in range(r.randint(1, 2))]
            r.shuffle(items)
            f[DOM], f[DOW] = ",".join(items), "?"
        else:
            def sp():
                d = g.value(DOW, r.randint(1, 7))
                return d + g.case("L") if g.chance(0.4) else d + "#" + str(r.randint(1, 5))
            items = [sp()] + [sp() if g.chance(0.25) else g.clean_item(DOW)
                              for _ in range(r.randint(1, 2))]
            r.shuffle(items)
            f[DOM], f[DOW] = "?", ",".join(items)
        return f
    if kind == "nw-short":
        f = g.base_fields(fy, sparse=True)
        f[DOM], f[DOW] = str(31 if g.chance(0.6) else r.randint(29, 30)) + g.case("W"), "?"
        if g.chance(0.6):
            f[MON] = "*"
        return f
    if kind == "year-limit":
        f = g.base_fields(fy, seven=True, beyond=True, sparse=g.chance(0.8))
        k = g.pick(["range", "step", "list", "six"])
        if k == "range":
            a = r.randint(2100, 2190)
            f[YEAR] = f"{a}-{r.randint(a, 2199)}"
        elif k == "step":
            f[YEAR] = f"{r.randint(2090, 2126)}/{r.randint(1, 9)}"
        elif k == "list":
            f[YEAR] = f"{r.randint(2000, 2126)},{r.randint(2127, 2199)}"
        else:
            f = f[:6]
        return f
    if kind == "year-wrap":
        a = r.randint(2050, 2199)
        b = r.randint(1970, a - 1)
        return _with(g.base_fields(fy, seven=True), YEAR,
                     f"{a}-{b}" + (f"/{r.randint(2, 9)}" if g.chance(0.3) else ""))
    if kind == "malformed":
        f = g.base_fields(fy)
        k = g.pick(["nW-m", "nW/m", "dL-m", "dLm", "name", "range3", "numx", "empty", "q?",
                    "/n", "dowLW"])
        if k in ("nW-m", "nW/m"):
            f[DOM], f[DOW] = f"{r.randint(1, 28)}{g.case('W')}{'-' if k == 'nW-m' else '/'}{r.randint(1, 9)}", "?"
        elif k in ("dL-m", "dLm"):
            f[DOM] = "?"
            f[DOW] = f"{g.value(DOW, r.randint(1, 7))}{g.case('L')}{'-' if k == 'dL-m' else ''}{r.randint(1, 6)}"
        elif k == "name":
            if g.chance(0.5):
                f[MON] = g.case(g.pick(["JANUARY", "MARCH", "Septemb", "DECX", "JAN-MARCH", "FEB-AUGUST"]))
            else:
                f[DOM] = "?"
                f[DOW] = g.case(g.pick(["MONDAY", "FRIDAY", "TUES", "SAT-SUNDAY", "WEDX"]))
        elif k == "range3":
            i = g.pick([SEC, MIN, HOUR])
            a = r.randint(0, 20)
            f[i] = f"{a}-{a + r.randint(1, 3)}-{a + r.randint(4, 9)}"
        elif k == "numx":
            i = g.pick([SEC, MIN, HOUR])
            f[i] = g.pick([f"{r.randint(0, 23)}x", f"{r.randint(0, 9)}-{r.randint(10, 23)}z",
                           f"{r.randint(0, 9)}/{r.randint(10, 20)}q"])
        elif k == "empty":
            i = g.pick([SEC, MIN, HOUR])
            a, b = r.randint(0, 23), r.randint(0, 23)
            f[i] = g.pick([f"{a},,{b}", f",{a}", f"{a},"])
        elif k == "q?":
            f[DOM] = g.pick(["?x", "?1", "?L"])
            f[DOW] = g.clean_field(DOW)
        elif k == "/n":
            i = g.pick([SEC, MIN, HOUR])
            f[i] = f"/{r.randint(2, 20)}"
        else:
            f[DOM], f[DOW] = "?", g.case("LW")
        return f
    if kind == "both-star":
        f = g.base_fields(fy)
        f[DOM] = f[DOW] = "*"
        return f
    if kind == "star-day":
        f = g.base_fields(fy)
        if g.chance(0.5):
            f[DOM], f[DOW] = "*", g.pick([g.clean_field(DOW), g.clean_dow_special()])
            if f[DOW] == "*":
                f[DOW] = g.value(DOW, r.randint(1, 7))
        else:
            f[DOM], f[DOW] = g.pick([g.clean_field(DOM), g.clean_dom_special()]), "*"
            if f[DOM] == "*":
                f[DOM] = str(r.randint(1, 31))
        return f
    if kind == "step-size":
        f = g.base_fields(fy)
        i = g.pick([SEC, MIN, HOUR])
        n = 24 if i == HOUR else 60
        f[i] = g.pick(["*", str(r.randint(0, n - 1))]) + "/" + g.num(n)
        return f
    if kind == "dow-L-list":
        f = g.base_fields(fy)
        items = [g.case("L")] + [g.clean_item(DOW) for _ in range(r.randint(1, 2))]
        r.shuffle(items)
        f[DOM], f[DOW] = "?", ",".join(items)
        return f
    if kind == "name-num-range":
        f = g.base_fields(fy)
        i = g.pick([MON, DOW])
        a, b = r.randint(LO[i], HI[i]), r.randint(LO[i], HI[i])
        if g.chance(0.5):
            item = g.case(_name_of(i, a)) + "-" + str(b)
        else:
            item = str(a) + "-" + g.case(_name_of(i, b))
        if i == DOW:
            f[DOM] = "?"
        return _with(f, i, item)
    if kind == "star-in-list":
        f = g.base_fields(fy)
        i = g.pick([SEC, MIN, HOUR, MON, DOW, YEAR])
        if i == YEAR and len(f) == 6:
            f.append("*")
        other = g.clean_item(i) if i != YEAR else str(r.randint(fy, 2126))
        f[i] = g.pick([f"*,{other}", f"{other},*"])
        if i == DOW:
            f[DOM] = "?"
        return f
    if kind == "step-unchecked":
        f = g.base_fields(fy)
        i = g.pick([SEC, MIN, HOUR, DOM, MON, DOW, YEAR])
        if i == YEAR:
            if len(f) == 6:
                f.append("*")
            a = r.randint(1990, 2100)
            f[YEAR] = g.pick([f"*/{r.randint(231, 400)}", f"{a}/{r.randint(231, 300)}",
                              f"{a}-{r.randint(a, 2199)}/{r.randint(231, 300)}"])
            return f
        a, b = sorted((r.randint(LO[i], HI[i]), r.randint(LO[i], HI[i])))
        f[i] = f"{a}-{b}/{r.randint(SIZE[i] + 1, SIZE[i] + 80)}"
        if i == DOM:
            f[DOW] = "?"
        if i == DOW:
            f[DOM] = "?"
        return f
    if kind == "L-nW":
        f = g.base_fields(fy)
        n = r.randint(29, 30) if g.chance(0.08) else r.randint(0, 28)
        f[DOM], f[DOW] = g.case("L") + "-" + str(n) + g.case("W"), "?"
        return f
    raise ValueError(kind)


# Quartz 2.3.2 also differs from the spec in ways QUARTZ-DIFFERENCES.md does not list (found
# while writing this test).  The generator leaves them out, so that every difference it
# provokes has a documented kind; they are reported for the document instead:
#   99 in any field, 98 in DOM   Quartz's internal markers: 99 reads as *, 98 in DOM as ?
#                                (`0 99 0 * * ?` fires every minute); the spec: out of range
#   0W in DOM                    accepted, and getTimeAfter never returns; the spec rejects
#   a year outside 1970-2199     accepted (1969, 2200, 1900-2000); the spec rejects
#   more than 7 fields           the extra fields are ignored; the spec rejects
#   a step of 0 (*/0, 5/0, 1-5/0) accepted as every value or as the start; the spec rejects
INVALID_BOTH = [
    # (field, texts): items or fields both Quartz and the spec reject
    (SEC, ["60", "61", "-5", "5-", "*/", "*/61", "?"]),
    (MIN, ["60", "75", "1--5", "*/5/2", "5-/2"]),
    (HOUR, ["24", "25", "*/25", "0-24"]),
    (DOM, ["0", "32", "32W", "L-31", "W", "LX", "*/32", "1-32"]),
    (MON, ["0", "13", "FOO", "JUX", "*/13", "1-13"]),
    (DOW, ["0", "8", "0L", "8L", "3#6", "3#0", "3#", "#2", "*/8", "FOO", "3#2X", "L/2"]),
]


def _invalid_both(g, fy):
    r = g.r
    f = g.base_fields(fy)
    k = g.pick(["item", "q-both", "restricted-both", "nfields"], [70, 8, 14, 8])
    if k == "item":
        i, texts = g.pick(INVALID_BOTH)
        f[i] = g.pick(texts)
        if i == DOM:
            f[DOW] = "?"
        elif i == DOW:
            f[DOM] = "?"
    elif k == "q-both":
        f[DOM] = f[DOW] = "?"
    elif k == "restricted-both":
        f[DOM], f[DOW] = str(r.randint(1, 28)), g.value(DOW, r.randint(1, 7))
    else:
        f = f[:r.randint(3, 4)]
    return f


def _never_fires(g, fy):
    r = g.r
    f = g.base_fields(fy, seven=False)
    k = g.pick(["feb30", "past-year", "apr31"])
    if k == "feb30":
        f[DOM], f[MON], f[DOW] = str(r.randint(30, 31)), g.case("FEB"), "?"
    elif k == "apr31":
        f[DOM], f[MON], f[DOW] = "31", g.pick(["4", "6", "9", "11", "APR,jun", "4,6,9,11"]), "?"
    else:
        f.append(str(r.randint(1970, max(1970, fy - 1))))
    return f


QUIRK_KINDS = ["named-step", "specials-list", "nw-short", "year-limit", "year-wrap",
               "malformed", "both-star", "star-day", "step-size", "dow-L-list",
               "name-num-range", "star-in-list", "step-unchecked", "L-nW"]


def transitions(tz, year):
    """The instants in a year at which the zone's UTC offset changes."""
    key = (tz, year)
    if key in _TRANS_CACHE:
        return _TRANS_CACHE[key]
    z = ZoneInfo(tz)

    def off(x):
        return dt.datetime.fromtimestamp(x, z).utcoffset()
    t = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    end = int(dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    out = []
    while t < end:
        u = t + 6 * 3600
        if off(t) != off(u):
            lo, hi = t, u
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if off(mid) == off(lo) else (lo, mid)
            out.append(hi)
        t = u
    _TRANS_CACHE[key] = out
    return out


_TRANS_CACHE = {}
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo",
             "Europe/London", "Australia/Sydney"]


def _dst_vector(g):
    """A vector near a daylight-saving change: a DST zone, FROM up to three days before a
    change (1972..2100), hour fields around the small hours or every hour."""
    r = g.r
    while True:
        tz = g.pick(DST_ZONES)
        year = r.randint(1972, 2100)
        tr = transitions(tz, year)
        if tr:
            break
    t = g.pick(tr) - r.randint(0, 3 * 86400)
    t = max(t, T1972)
    frm = fmt_time(t, 0)
    hour = g.pick(["*", "*/1", "0-23", str(r.randint(0, 4)), f"{r.randint(0, 2)}-{r.randint(2, 4)}",
                   f"{r.randint(0, 3)},{r.randint(12, 23)}", "1/2"])
    minute = g.pick(["0", "30", "0/30", "*/15", str(r.randint(0, 59)), "*"])
    sec = g.pick(["0", "0", "0/20", str(r.randint(0, 59))])
    dom, dow = g.pick([("*", "?"), ("?", "*"), ("?", g.clean_dow_special()), (g.clean_dom_special(), "?"),
                       (str(r.randint(1, 31)), "?"), ("?", g.value(DOW, r.randint(1, 7)))])
    f = [sec, minute, hour, dom, "*", dow]
    return Vector(g.join(f), tz, frm, r.randint(1, 10), "dst")


def generate(n=4000, seed=1, dst=False):
    """n deterministic random vectors for a seed: about 77% clean (Quartz and the spec
    agree on every construct), 15% carrying one documented difference, 6% invalid for
    both, 2% valid but never firing.  dst: instead, vectors in daylight-saving zones
    close to their changes (an exploration of the three daylight-saving kinds; Java's
    own tz data must then match the system's)."""
    g = Gen(seed)
    out = []
    if dst:
        return [_dst_vector(g) for _ in range(n)]
    for _ in range(n):
        tz, frm, fy = g.zone_and_from()
        count = g.r.randint(1, 10)
        k = g.pick(["clean", "quirk", "invalid", "never"], [77, 15, 6, 2])
        if k == "clean":
            f = g.base_fields(fy)
            if detect_constructs(g.join(f)):
                f = [g.num(0), g.num(0), g.num(12), "?", "*", g.case("MON-FRI")]
            gen = "clean"
        elif k == "quirk":
            gen = g.pick(QUIRK_KINDS)
            f = _quirk(g, gen, fy)
        elif k == "invalid":
            gen, f = "invalid", _invalid_both(g, fy)
        else:
            gen, f = "never", _never_fires(g, fy)
        out.append(Vector(g.join(f), tz, frm, count, gen))
    return out


# ---------------------------------------------------------------------------------------
# Running the engines.
# ---------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: str                 # OK, INVALID, TIMEOUT, ERROR, or CRASH (no line at all)
    payload: str = ""
    times: list = field(default_factory=list)    # strings as printed
    parsed: list = field(default_factory=list)   # (epoch, offset) per time
    bad: str = ""                                # protocol problem, if any

    def show(self):
        if self.status in ("OK", "TIMEOUT"):
            return f"{self.status} [{','.join(self.times)}]"
        return f"{self.status}: {self.payload}"


def parse_answer(line, v):
    f = line.split("\t")
    k = 4 if len(f) > 4 and f[3].strip().isdigit() else 3
    status = f[k] if len(f) > k else "?"
    payload = "\t".join(f[k + 1:]) if len(f) > k + 1 else ""
    a = Answer(status, payload)
    if (f[:3] != [v.expr, v.tz, v.frm]) or (k == 4 and f[3] != str(v.count)):
        a.bad = f"echoed columns differ from the input: {f[:k]!r}"
    if status in ("OK", "TIMEOUT"):
        a.times = [x for x in payload.split(",") if x]
        for x in a.times:
            p = parse_time(x)
            if p is None:
                a.bad = f"not an RFC 3339 time with seconds and numeric offset: {x!r}"
                a.status = "ERROR"
                break
            a.parsed.append(p)
    elif status not in ("INVALID", "ERROR"):
        a.bad = f"unknown status {status!r}"
        a.status = "ERROR"
    return a


def run_filter(argv, vectors, timeout=600):
    """Feed vectors to a TSV filter; returns ([Answer], problem or None)."""
    inp = "".join(f"{v.expr}\t{v.tz}\t{v.frm}\t{v.count}\n" for v in vectors)
    try:
        p = subprocess.run(argv, input=inp, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    except OSError as e:
        return None, f"could not run {argv[0]}: {e}"
    lines = p.stdout.splitlines()
    if p.returncode < 0 or len(lines) != len(vectors):
        sig = f" (killed by signal {-p.returncode})" if p.returncode < 0 else f" (exit {p.returncode})"
        return None, (f"printed {len(lines)} lines for {len(vectors)} inputs{sig}: "
                      f"{p.stderr.strip()[-300:]}")
    return [parse_answer(line, v) for line, v in zip(lines, vectors)], None


def run_batches(argv, vectors, batch, jobs, label, problems):
    """All vectors through a filter, `batch` per process, `jobs` processes at a time.
    A batch that is killed by a signal or prints the wrong number of lines is re-run one
    vector at a time to find the inputs responsible; those get Answer('CRASH').  Every
    such failure is also recorded in `problems`."""
    chunks = [vectors[i:i + batch] for i in range(0, len(vectors), batch)]

    def one(chunk):
        res, prob = run_filter(argv, chunk)
        if res is not None:
            return res
        problems.append(f"{label}: batch of {len(chunk)} failed: {prob}")
        out = []
        for v in chunk:
            r1, p1 = run_filter(argv, [v], timeout=60)
            if r1 is None:
                problems.append(f"{label}: {v.expr!r} tz={v.tz} from={v.frm} count={v.count}: {p1}")
                out.append(Answer("CRASH", p1))
            else:
                out.append(r1[0])
        return out

    answers = []
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        for res in ex.map(one, chunks):
            answers.extend(res)
    return answers


def quartz_classpath(build):
    return ":".join([os.path.join(build, "quartz")] + QUARTZ_JARS)


def build_quartz(build):
    """javac QuartzNext.java into <build>/quartz when the class is missing or stale."""
    src = os.path.join(HERE, "QuartzNext.java")
    out = os.path.join(build, "quartz")
    cls = os.path.join(out, "QuartzNext.class")
    if os.path.exists(cls) and os.path.getmtime(cls) >= os.path.getmtime(src):
        return
    os.makedirs(out, exist_ok=True)
    subprocess.run(["javac", "-nowarn", "-d", out, "-cp", ":".join(QUARTZ_JARS), src], check=True)


def quartz_max_year(build):
    p = subprocess.run(["java", "-cp", quartz_classpath(build), "QuartzNext", "--max-year"],
                       capture_output=True, text=True, check=True)
    return int(p.stdout.strip())


# ---------------------------------------------------------------------------------------
# Explaining differences.
# ---------------------------------------------------------------------------------------

KINDS = [
    # id, row of QUARTZ-DIFFERENCES.md
    ("dst-gap", "daylight saving, spring gap, hour field not matching every hour"),
    ("dst-overlap-all", "daylight saving, autumn overlap, hour field matching every hour"),
    ("dst-overlap-other", "daylight saving, autumn overlap, hour field not matching every hour"),
    ("named-step", "named range with a step (SUN-SAT/2, JAN-DEC/3)"),
    ("specials-list", "specials in a list (MON#1,WED, L,15, LW,1W, 1L,3L)"),
    ("nw-short", "nW where the month has no day n (31W in April)"),
    ("year-limit", "years past Quartz's limit"),
    ("year-wrap", "a wrapping year range (2163-1988)"),
    ("malformed", "trailing garbage (2W-4, 5L-2, 1--5) and other malformed items"),
    ("both-star", "both DOM and DOW * (0 0 12 * * *)"),
    ("star-day", "* in one day field, the other restricted"),
    ("step-size", "a step as large as the field (*/60 in SEC or MIN, */24 in HOUR)"),
    ("dow-L-list", "DOW L inside a list (L,MON)"),
    ("name-num-range", "a range mixing a name and a number (MON-5, 2-FRI, JAN-6, 3-JUN)"),
    ("star-in-list", "* inside a list (*,30, *,MON, 2030,*)"),
    ("step-unchecked", "a step larger than the field where Quartz does not check it"),
    ("L-nW", "L-nW in DOM (L-3W, l-2w)"),
]
KIND_IDS = [k for k, _ in KINDS]

RE_NAMED_STEP = re.compile(r"([A-Z]{3})(?:-([A-Z]{3}))?/([0-9]+)")
RE_NAME_NUM = re.compile(r"(?:([A-Z]{3})-([0-9]+)|([0-9]+)-([A-Z]{3}))(?:/[0-9]+)?")
RE_STEP_ITEM = re.compile(r"(\*|[0-9]+)/([0-9]+)")
RE_RANGE_STEP = re.compile(r"([0-9]+)-([0-9]+)/([0-9]+)")
RE_LNW = re.compile(r"L-[0-9]+W")


def _items(text):
    return text.split(",")


def detect_constructs(expr):
    """The documented kinds whose construct appears in expr (DST and year-limit kinds
    depend on the zone and the times, not on the text, and are not listed)."""
    fs = split_fields(expr)
    found = []
    if len(fs) not in (6, 7):
        return found
    dom, dow = fs[DOM], fs[DOW]
    for f in (MON, DOW):
        for it in _items(fs[f]):
            m = RE_NAMED_STEP.fullmatch(it)
            if m and all(x is None or x in _names(f) for x in m.groups()[:2]):
                found.append(("named-step", f, it))
            m = RE_NAME_NUM.fullmatch(it)
            if m:
                found.append(("name-num-range", f, it))
    if "," in dom and any(it in ("L", "LW") or RE_DOM_LAST.fullmatch(it) or RE_DOM_NEAR.fullmatch(it)
                          for it in _items(dom)):
        found.append(("specials-list", DOM, dom))
    if "," in dow and any(RE_DOW_LAST.fullmatch(it) or RE_DOW_NTH.fullmatch(it) for it in _items(dow)):
        found.append(("specials-list", DOW, dow))
    m = RE_DOM_NEAR.fullmatch(dom)
    if m and int(m[1]) >= 29:
        found.append(("nw-short", DOM, dom))
    if len(fs) == 7:
        for it in _items(fs[YEAR]):
            m = re.fullmatch(r"([0-9]+)-([0-9]+)(?:/[0-9]+)?", it)
            if m and int(m[2]) < int(m[1]):
                found.append(("year-wrap", YEAR, it))
    if any(c[2] == "syntax" and not RE_LNW.fullmatch(c[1]) for c in item_problems(expr)):
        found.append(("malformed", None, expr))
    if dom == "*" and dow == "*":
        found.append(("both-star", DOM, "*"))
    elif (dom == "*") != (dow == "*") and "?" not in (dom, dow):
        found.append(("star-day", DOM if dom == "*" else DOW, "*"))
    for f, n in ((SEC, 60), (MIN, 60), (HOUR, 24)):
        for it in _items(fs[f]):
            m = RE_STEP_ITEM.fullmatch(it)
            if m and int(m[2]) == n:
                found.append(("step-size", f, it))
    if "," in dow and "L" in _items(dow):
        found.append(("dow-L-list", DOW, dow))
    for f, text in enumerate(fs):
        if "," in text and "*" in _items(text):
            found.append(("star-in-list", f, text))
    for f, text in enumerate(fs):
        for it in _items(text):
            m = RE_RANGE_STEP.fullmatch(it)
            if m and int(m[3]) > SIZE[f]:
                found.append(("step-unchecked", f, it))
            if f == YEAR:
                m = RE_STEP_ITEM.fullmatch(it)
                if m and int(m[2]) > SIZE[YEAR]:
                    found.append(("step-unchecked", f, it))
    for it in _items(dom):
        if RE_LNW.fullmatch(it):
            found.append(("L-nW", DOM, it))
    return found


@dataclass
class Ctx:
    max_year: int      # Quartz's last year (this year + 100)


@dataclass
class Claim:
    """Evidence a kind needs beyond the vector itself, checked after a second batch:
    'same' - answer of (side_a, expr_a) equals answer of (side_b, expr_b) (a Quartz side
             may stop early at its year limit);
    'union' - tethys's answer for expr_a is the merge of its answers for exprs;
    'named' - tethys's error message for expr_a names field `fld`."""
    what: str
    side_a: str
    expr_a: str
    side_b: str = ""
    expr_b: str = ""
    exprs: tuple = ()
    fld: int = -1


def _local_year(s):
    return int(s[:4])


def same_schedule(qa, ta, ctx):
    """True when Quartz answer qa and tethys answer ta agree, allowing Quartz to stop
    at its year limit (its list a proper prefix of ta's, the next time after max_year)."""
    if qa.status != "OK" or ta.status != "OK":
        return False
    if qa.parsed == ta.parsed:
        return True
    n = len(qa.parsed)
    return (n < len(ta.parsed) and ta.parsed[:n] == qa.parsed
            and _local_year(ta.times[n]) > ctx.max_year)


def _window(q, t, count, ctx):
    """The instants each side fires up to the point both lists are known complete."""
    ends = []
    if len(q.parsed) == count:
        ends.append(q.parsed[-1][0])
    else:
        ends.append(int(dt.datetime(ctx.max_year + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp()) - 14 * 3600)
    if len(t.parsed) == count:
        ends.append(t.parsed[-1][0])
    w = min(ends)
    qs = {p for p in q.parsed if p[0] <= w}
    ts = {p for p in t.parsed if p[0] <= w}
    return qs, ts


def _rewrite(expr, f, text):
    fs = split_fields(expr)
    fs = _with(fs, f, text)
    return " ".join(fs)


def _names_to_numbers(expr):
    fs = split_fields(expr)
    for f in (MON, DOW):
        if f < len(fs):
            fs[f] = re.sub(r"[A-Z]{3}", lambda m: str(_names(f).get(m[0], m[0])), fs[f])
    return " ".join(fs)


def _quartz_set_min(text, f):
    """The smallest number Quartz puts in a day field's set (what it keeps of a list)."""
    vals = []
    for it in _items(text):
        m = RE_DOM_NEAR.fullmatch(it) if f == DOM else RE_DOW_NTH.fullmatch(it)
        if m:
            vals.append(_value(m[1], f))
            continue
        vals.extend(parse_item(it, f)[1])
    return min(vals)


def explain(kind, v, q, t, ctx):
    """None if `kind` cannot explain the difference between Quartz answer q and tethys
    answer t for vector v; else a list of Claims still to check (empty: explained)."""
    fs = split_fields(v.expr)
    found = [c for c in detect_constructs(v.expr) if c[0] == kind]
    if kind == "year-limit":
        if q.status == "OK" and t.status == "OK" and q.parsed != t.parsed and same_schedule(q, t, ctx):
            return []
        return None
    if kind.startswith("dst-"):
        return _explain_dst(kind, v, q, t, ctx)
    if not found:
        return None
    orig = v.expr
    if kind == "named-step":
        if q.status != "OK" or t.status != "OK":
            return None
        qview = orig
        for _, f, it in found:
            items = [re.sub(r"/[0-9]+$", "", x) if x == it else x for x in _items(split_fields(qview)[f])]
            qview = _rewrite(qview, f, ",".join(items))
        return [Claim("same", "quartz", orig, "tethys", qview),
                Claim("same", "quartz", _names_to_numbers(orig), "tethys", orig)]
    if kind == "specials-list":
        if t.status != "OK" or q.status not in ("OK", "INVALID"):
            return None
        _, f, text = found[0]
        other = DOW if f == DOM else DOM
        variants = tuple(_rewrite(_rewrite(orig, f, it), other, "?") for it in _items(text))
        claims = [Claim("union", "tethys", orig, exprs=variants)]
        claims += [Claim("same", "quartz", x, "tethys", x) for x in variants]
        if q.status == "OK":
            its = _items(text)
            if f == DOM and all(RE_DOM_NEAR.fullmatch(x) or parse_item(x, DOM)[0] == "set" for x in its):
                keep = f"{_quartz_set_min(text, DOM)}W"
            elif f == DOW and sum(bool(RE_DOW_NTH.fullmatch(x)) for x in its) == 1 and \
                    not any(RE_DOW_LAST.fullmatch(x) or x == "L" for x in its):
                k = [RE_DOW_NTH.fullmatch(x)[2] for x in its if RE_DOW_NTH.fullmatch(x)][0]
                keep = f"{_quartz_set_min(text, DOW)}#{k}"
            else:
                return None
            claims.append(Claim("same", "quartz", orig, "tethys", _rewrite(orig, f, keep)))
        return claims
    if kind == "nw-short":
        if q.status != "OK" or t.status != "OK":
            return None
        n = int(RE_DOM_NEAR.fullmatch(fs[DOM])[1])
        qs, ts = _window(q, t, v.count, ctx)
        extra, missing = qs - ts, ts - qs
        if missing or not extra:
            return None
        for e, off in extra:
            d = dt.datetime.fromtimestamp(e + off, dt.timezone.utc)
            if _days_in_month(d.year, d.month) >= n:
                return None
        return []
    if kind == "year-wrap":
        if q.status != "INVALID" or t.status != "OK":
            return None
        years = set()
        for it in _items(fs[YEAR]):
            years |= parse_item(it, YEAR)[1]
        return [Claim("same", "quartz", _rewrite(orig, YEAR, ",".join(map(str, sorted(years)))),
                      "tethys", orig)]
    if kind == "malformed":
        if q.status != "OK" or t.status != "INVALID":
            return None
        bad = sorted({f for f, it, c in item_problems(orig) if c == "syntax" and not RE_LNW.fullmatch(it)})
        return [Claim("named", "tethys", orig, fld=bad[0])] if len(bad) == 1 else []
    if kind in ("both-star", "star-day"):
        if q.status != "INVALID" or t.status != "OK":
            return None
        f = found[0][1] if kind == "star-day" else DOW
        return [Claim("same", "quartz", _rewrite(orig, f, "?"), "tethys", orig)]
    if kind == "step-size":
        if q.status != "INVALID" or t.status != "OK":
            return None
        x = orig
        for _, f, it in found:
            start = RE_STEP_ITEM.fullmatch(it)[1]
            items = [(str(LO[f]) if start == "*" else start) if y == it else y
                     for y in _items(split_fields(x)[f])]
            x = _rewrite(x, f, ",".join(items))
        return [Claim("same", "quartz", x, "tethys", orig)]
    if kind == "dow-L-list":
        if q.status != "INVALID" or t.status != "OK":
            return None
        return [Claim("same", "quartz", _rewrite(orig, DOW, ",".join(
            "7" if it == "L" else it for it in _items(fs[DOW]))), "tethys", orig)]
    if kind == "name-num-range":
        if q.status != "INVALID" or t.status != "OK":
            return None
        return [Claim("same", "quartz", _names_to_numbers(orig), "tethys", orig)]
    if kind == "star-in-list":
        if q.status != "OK" or t.status != "INVALID":
            return None
        x = orig
        for _, f, _text in found:
            x = _rewrite(x, f, "*")
        return [Claim("named", "tethys", orig, fld=found[0][1]),
                Claim("same", "quartz", orig, "tethys", x)]
    if kind == "step-unchecked":
        if q.status != "OK" or t.status != "INVALID":
            return None
        x = orig
        for _, f, it in found:
            start = it.split("/")[0].split("-")[0]
            start = str(LO[f]) if start == "*" else start
            x = _rewrite(x, f, ",".join(start if y == it else y for y in _items(split_fields(x)[f])))
        return [Claim("named", "tethys", orig, fld=found[0][1]),
                Claim("same", "quartz", orig, "tethys", x)]
    if kind == "L-nW":
        if q.status not in ("OK", "TIMEOUT") or t.status != "INVALID":
            return None
        return [Claim("named", "tethys", orig, fld=DOM)]
    return None


def _transition_before(z, t, window=2 * 86400):
    """(instant, offset before, offset after) of the last offset change in (t-window, t]."""
    def off(x):
        return int(dt.datetime.fromtimestamp(x, z).utcoffset().total_seconds())
    lo, hi = t - window, t
    if off(lo) == off(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if off(mid) == off(hi):
            hi = mid
        else:
            lo = mid
    return hi, off(lo), off(hi)


def _explain_dst(kind, v, q, t, ctx):
    if q.status != "OK" or t.status != "OK":
        return None
    try:
        z = ZoneInfo(v.tz)
        e = parse_expr(v.expr)
    except (ZoneInfoNotFoundError, ValueError, SpecError):
        return None
    r = zone_fixed_since(v.tz)
    if r and parse_from(v.frm) >= r[1]:
        return None                                  # no offset change in range at all
    qs, ts = _window(q, t, v.count, ctx)
    extra, missing = qs - ts, ts - qs
    if kind == "dst-gap":
        if e.hours_all or extra or not missing:
            return None
        for m, _ in missing:
            tr = _transition_before(z, m, 1)
            if not tr or tr[0] != m or tr[2] <= tr[1]:
                return None
        return []
    def twin(x):
        """The other instant with x's local wall time when x lies in a repeated stretch
        (autumn overlap), with 1 for the first pass or 2 for the second; else None."""
        tr = _transition_before(z, x)
        if tr and tr[1] > tr[2] and x < tr[0] + (tr[1] - tr[2]):
            return x - (tr[1] - tr[2]), 2
        later = _transition_before(z, x + 86400, 86400)
        if later and later[1] > later[2] and later[0] - (later[1] - later[2]) <= x < later[0]:
            return x + (later[1] - later[2]), 1
        return None

    wend = max([p[0] for p in qs | ts], default=0)
    qi, ti = {p[0] for p in qs}, {p[0] for p in ts}
    t0 = parse_from(v.frm)

    def seen_by_quartz(x):
        """Quartz has instant x, or x lies outside what both answers cover."""
        return x in qi or x > wend or x <= t0
    if kind == "dst-overlap-all":
        # Quartz fires once where the spec fires at both passes of a repeated hour.
        if not e.hours_all or extra or not missing:
            return None
        for m, _ in missing:
            tw = twin(m)
            if not tw or not seen_by_quartz(tw[0]):
                return None
        return []
    if kind == "dst-overlap-other":
        # Quartz fires at the second pass where the spec fires at the first.
        if e.hours_all or not (extra or missing):
            return None
        for x, _ in extra:
            tw = twin(x)
            if not tw or tw[1] != 2 or tw[0] not in ti:
                return None
        for m, _ in missing:
            tw = twin(m)
            if not tw or tw[1] != 1 or not seen_by_quartz(tw[0]):
                return None
        return []
    return None


def field_named(msg, f):
    name = FIELD_NAMES[f]
    pat = r"(?<!day-of-)month" if f == MON else re.escape(name)
    return re.search(pat, msg, re.IGNORECASE) is not None


def merge_first(answers, count):
    """The first `count` instants of the union of several answers (sorted, distinct)."""
    s = sorted({p for a in answers for p in a.parsed})
    return s[:count]


def check_claim(c, v, results, ctx):
    """(ok, why) for a Claim; results(side, expr) gives the Answer for v's zone, FROM
    and COUNT (or None)."""
    a = results(c.side_a, c.expr_a)
    if a is None:
        return False, f"no answer for {c.side_a} {c.expr_a!r}"
    if c.what == "named":
        if a.status != "INVALID":
            return False, f"expected tethys to reject {c.expr_a!r}"
        if not field_named(a.payload, c.fld):
            return False, f"tethys's message does not name the {FIELD_NAMES[c.fld]} field: {a.payload!r}"
        return True, ""
    if c.what == "union":
        parts = [results("tethys", x) for x in c.exprs]
        if any(p is None or p.status != "OK" for p in parts) or a.status != "OK":
            return False, "a list item alone is not valid for tethys"
        if merge_first(parts, v.count) != a.parsed:
            return False, (f"tethys's answer for {c.expr_a!r} is not the union of its answers for "
                           f"{', '.join(map(repr, c.exprs))}")
        return True, ""
    b = results(c.side_b, c.expr_b)
    if b is None:
        return False, f"no answer for {c.side_b} {c.expr_b!r}"
    qa, ta = (a, b) if c.side_a == "quartz" else (b, a)
    if c.side_a == c.side_b:
        ok = a.status == "OK" and a.parsed == b.parsed
    else:
        ok = same_schedule(qa, ta, ctx)
    if ok:
        return True, ""
    return False, (f"{c.side_a} for {c.expr_a!r} gives {a.show()[:160]} but {c.side_b} for "
                   f"{c.expr_b!r} gives {b.show()[:160]}")


def agree(q, t):
    if q.status != t.status or q.status not in ("OK", "INVALID"):
        return False
    return q.status == "INVALID" or q.parsed == t.parsed


@dataclass
class Outcome:
    v: Vector
    q: Answer
    t: Answer
    verdict: str = ""          # 'agree', a kind id, or 'unexplained'
    why: list = field(default_factory=list)
    model: tuple = None


def classify_all(vectors, qans, tans, ctx, run_more):
    """Classify every vector.  run_more(side, [Vector]) -> [Answer] runs the rewritten
    expressions the claims need.  Returns [Outcome]."""
    outs = [Outcome(v, q, t) for v, q, t in zip(vectors, qans, tans)]
    pending = []                       # (outcome, [(kind, claims)])
    for o in outs:
        if o.t.bad or o.q.bad:
            o.verdict = "unexplained"
            o.why.append("protocol: " + (o.t.bad and "tethys " + o.t.bad or "quartz " + o.q.bad))
            continue
        if agree(o.q, o.t):
            o.verdict = "agree"
            continue
        if o.t.status not in ("OK", "INVALID"):
            o.verdict = "unexplained"
            o.why.append(f"tethys answered {o.t.status}: {o.t.payload[:200]}")
            continue
        cands = []
        for kind in KIND_IDS:
            try:
                claims = explain(kind, o.v, o.q, o.t, ctx)
            except (SpecError, ValueError, IndexError, TypeError) as e:
                claims = None
                o.why.append(f"{kind}: could not build the check ({e})")
            if claims is not None:
                cands.append((kind, claims))
        if not cands:
            o.verdict = "unexplained"
            present = sorted({c[0] for c in detect_constructs(o.v.expr)})
            o.why.append("no documented kind fits" + (
                f" (constructs present: {', '.join(present)}; but the difference does not go "
                f"the documented way)" if present else " (no documented construct in the expression)"))
            if o.q.status == "TIMEOUT":
                o.why.append("Quartz timed out, which only L-nW may do")
            continue
        pending.append((o, cands))

    # Second batch: every (side, expr) the claims need, for each vector's tz/from/count.
    need = {"quartz": {}, "tethys": {}}
    for o, cands in pending:
        for _, claims in cands:
            for c in claims:
                need[c.side_a][(c.expr_a,) + o.v.key()[1:]] = None
                if c.side_b:
                    need[c.side_b][(c.expr_b,) + o.v.key()[1:]] = None
                for x in c.exprs:
                    need["tethys"][(x,) + o.v.key()[1:]] = None
    have = {}
    for side in ("quartz", "tethys"):
        for o in outs:
            have[(side,) + o.v.key()] = o.q if side == "quartz" else o.t
        todo = [Vector(*k) for k in need[side] if (side,) + k not in have]
        if todo:
            for vv, a in zip(todo, run_more(side, todo)):
                have[(side,) + vv.key()] = a
    for o, cands in pending:
        rest = o.v.key()[1:]

        def view(side, expr, rest=rest):
            return have.get((side, expr) + rest)
        for kind, claims in cands:
            fails = [why for ok, why in (check_claim(c, o.v, view, ctx) for c in claims) if not ok]
            if not fails:
                o.verdict = kind
                o.why = []
                break
            o.why.append(f"{kind}? " + "; ".join(fails))
        else:
            o.verdict = "unexplained"
    return outs


# ---------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------

def report(outs, problems, ctx, show=20, out=sys.stdout):
    n = len(outs)
    agreeing = [o for o in outs if o.verdict == "agree"]
    kinds = {k: 0 for k in KIND_IDS}
    for o in outs:
        if o.verdict in kinds:
            kinds[o.verdict] += 1
    unexpl = [o for o in outs if o.verdict == "unexplained"]
    both_ok = sum(1 for o in agreeing if o.q.status == "OK")
    nonempty = sum(1 for o in agreeing if o.q.status == "OK" and o.q.times)
    documented = sum(kinds.values())
    w = out.write
    w(f"\nQuartz 2.3.2 vs tethys: {n} vectors (Quartz's year limit {ctx.max_year})\n")
    w(f"  {'total vectors':<88}{n:>6}\n")
    w(f"  {'agreeing':<88}{len(agreeing):>6}  ({100.0 * len(agreeing) / max(n, 1):.1f}%: "
      f"{both_ok} same times, {nonempty} of them non-empty; {len(agreeing) - both_ok} both invalid)\n")
    w(f"  {'documented differences':<88}{documented:>6}\n")
    for k, desc in KINDS:
        w(f"    {k:<19}{desc[:64]:<67}{kinds[k]:>6}\n")
    w(f"  {'unexplained':<88}{len(unexpl):>6}\n")
    if n and len(agreeing) < 0.7 * n:
        w(f"WARNING: only {100.0 * len(agreeing) / n:.1f}% of the vectors agree; the corpus should "
          f"prove equality on at least 70%\n")
    gens = {}
    for o in outs:
        gens.setdefault(o.v.gen, {}).setdefault(o.verdict, 0)
        gens[o.v.gen][o.verdict] += 1
    w("  outcome by what the generator meant to exercise:\n")
    for g, d in sorted(gens.items()):
        w(f"    {g:<16}{sum(d.values()):>5}: {', '.join(f'{k} {c}' for k, c in sorted(d.items()))}\n")
    for p in problems[:20]:
        w(f"PROBLEM {p}\n")
    for o in unexpl[:show]:
        w(f"\nUNEXPLAINED {o.v.expr!r} tz={o.v.tz} from={o.v.frm} count={o.v.count} (generated as {o.v.gen})\n")
        w(f"  quartz: {o.q.show()}\n")
        w(f"  tethys: {o.t.show()}\n")
        if o.model:
            w(f"  spec model: {o.model[0]} {'[' + o.model[1] + ']' if o.model[0] == 'OK' else o.model[1]}\n")
        for why in o.why:
            w(f"  - {why}\n")
    if len(unexpl) > show:
        w(f"... and {len(unexpl) - show} more unexplained\n")
    return len(agreeing), documented, len(unexpl)


def model_verdict(o):
    st, pay = model_answer(o.v.expr, o.v.tz, o.v.frm, o.v.count)
    return st, pay


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=4000, help="vectors to generate (default 4000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory")
    ap.add_argument("--tethys", help="tethys binary (default <build>/tethys)")
    ap.add_argument("--tethys-cmd", help="whole filter command instead of '<tethys> cron next --tsv'")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show", type=int, default=20, help="unexplained vectors to print")
    ap.add_argument("--model", action="store_true",
                    help="also compare tethys with this script's spec model and list the differences")
    ap.add_argument("--dump", help="write the generated vectors (TSV) to this file")
    ap.add_argument("--dst", action="store_true",
                    help="exploration: vectors near daylight-saving changes in DST zones instead")
    ap.add_argument("--model-tsv", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.model_tsv:
        model_tsv_filter(sys.stdin, sys.stdout)
        return 0

    t0 = time.monotonic()
    build = os.path.abspath(a.build)
    build_quartz(build)
    ctx = Ctx(quartz_max_year(build))
    qcmd = ["java", "-XX:+UseSerialGC", "-cp", quartz_classpath(build), "QuartzNext"]
    if a.tethys_cmd:
        tcmd = shlex.split(a.tethys_cmd)
    else:
        tcmd = [a.tethys or os.path.join(build, "tethys"), "cron", "next", "--tsv"]
    vectors = generate(a.n, a.seed, a.dst)
    if a.dump:
        with open(a.dump, "w", encoding="utf-8") as fh:
            for v in vectors:
                fh.write(f"{v.expr}\t{v.tz}\t{v.frm}\t{v.count}\n")
    problems = []
    qans = run_batches(qcmd, vectors, max(a.batch, 1000), a.jobs, "quartz", problems)
    tans = run_batches(tcmd, vectors, a.batch, a.jobs, "tethys", problems)
    crashed = [p for p in problems if p.startswith("tethys")]

    def run_more(side, vs):
        cmd = qcmd if side == "quartz" else tcmd
        return run_batches(cmd, vs, max(a.batch, 1000) if side == "quartz" else a.batch,
                           a.jobs, side + " (rewrites)", problems)

    outs = classify_all(vectors, qans, tans, ctx, run_more)
    for o in outs:
        if o.verdict == "unexplained":
            o.model = model_verdict(o)
    agreeing, documented, unexpl = report(outs, problems, ctx, a.show)
    if a.model:
        bad = []
        for o in outs:
            st, pay = model_verdict(o)
            if st == "ERROR":
                continue
            mt = [parse_time(x) for x in pay.split(",") if x] if st == "OK" else []
            if st != o.t.status or (st == "OK" and mt != o.t.parsed):
                bad.append((o, st, pay))
        print(f"\nspec model vs tethys: {len(bad)} of {len(outs)} differ")
        for o, st, pay in bad[:a.show]:
            print(f"MODEL {o.v.expr!r} tz={o.v.tz} from={o.v.frm} count={o.v.count}\n"
                  f"  tethys: {o.t.show()}\n  model:  {st} {pay}")
    print(f"({time.monotonic() - t0:.1f} s)")
    print(f"quartz-diff: {len(outs)} compared, {agreeing} agree, {documented} documented differences, "
          f"{unexpl} unexplained")
    return 1 if unexpl or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
