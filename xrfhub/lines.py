"""One spelling for XRF line names, whatever the vendor wrote.

Avaatech bAXIL writes ``Ca-Ka`` and pads one-letter symbols (``P -Ka``, ``K -Ka``), its scatter
peaks carry the tube line (``Rh-La-Inc``, ``Rh-Ka-Coh``); ITRAX Q-Spec writes a bare element
(``Ca``, ``Ba``), ``Mo inc``/``Mo coh`` for the scatter peaks and ``Fe a*2``/``Fe a+b`` for sum
(pile-up) peaks; hand-made tables write ``Ca Ka``, ``Ca_Ka`` or ``CaKa``. Every element reader
maps its column names through :func:`unify_line` so that the same line is the same name in
the store:

==========================  ===============
written                     unified
==========================  ===============
``Ca Ka``, ``Ca_Ka``,       ``Ca-Ka``
``CaKa``, ``ca-ka``,
``Ca K-alpha``, ``Ca Kα``
``Ca`` (bare, ITRAX)        ``Ca-Ka``
``Ba``, ``Pb`` (bare)       ``Ba-La``, ``Pb-La``
``Fe Kb1``                  ``Fe-Kb1``
``Mo inc`` / ``Mo coh``     ``Mo-inc`` / ``Mo-coh``
``Rh-La-Inc``               ``Rh-La-inc``
``Fe a*2`` / ``Fe a+b``     ``Fe-Ka+Ka`` / ``Fe-Ka+Kb``
==========================  ===============

A bare element means the line a core scanner measures for it: K-alpha up to tin (Z = 50) and
L-alpha from antimony (Z = 51) on, because the K edge of Sb (30.5 keV) and of every heavier
element lies above the 30 kV at which core scanners excite their heavy elements, so only their
L lines are in the spectrum (ITRAX reports I, Cs, Ba, Nd, W, Pb, Bi ... by their L lines).
A scatter peak keeps the tube line when the vendor names it (``Rh-La-inc`` and ``Rh-Ka-inc``
are different peaks, measured at 10 and 30 kV); ITRAX's ``Mo inc`` names none and stays
``Mo-inc``.
"""
from __future__ import annotations

import re

#: Element symbols by atomic number (index 0 is Z = 1).
SYMBOLS: tuple[str, ...] = tuple((
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy "
    "Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf "
    "Es Fm Md No Lr").split())
_Z = {symbol: z for z, symbol in enumerate(SYMBOLS, start=1)}

#: Heaviest element whose bare name means its K-alpha line; heavier ones mean L-alpha.
BARE_K_MAX_Z = 50

#: Scatter-peak words -> the unified suffix.
_SCATTER = {"inc": "inc", "incoh": "inc", "incoherent": "inc", "compton": "inc",
            "coh": "coh", "coherent": "coh", "rayleigh": "coh"}
_GREEK = {"a": "a", "alpha": "a", "α": "a", "b": "b", "beta": "b", "β": "b",
          "g": "g", "gamma": "g", "γ": "g", "l": "l", "n": "n", "eta": "n"}
# A Siegbahn line: shell, greek letter, optional index ("Ka", "Kb1", "L-alpha", "Lg2").
_LINE = re.compile(r"^([klm])(alpha|beta|gamma|eta|[abglnαβγ])(\d?)$", re.IGNORECASE)
# A sum (pile-up) peak: "a*2", "Ka*2", "a+b", "Ka+Kb".
_SUM_TWICE = re.compile(r"^([klm]?)([ab])\*2$", re.IGNORECASE)
_SUM_PAIR = re.compile(r"^([klm]?)([ab])\+([klm]?)([ab])$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s_\-]+")


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (``"Ca"`` -> 20); ValueError if there is none."""
    try:
        return _Z[symbol]
    except KeyError:
        raise ValueError(f"{symbol!r} is not an element symbol") from None


def default_line(element: str) -> str:
    """The line a bare element name stands for: ``"Ka"`` up to Sn, ``"La"`` from Sb on."""
    return "Ka" if atomic_number(element) <= BARE_K_MAX_Z else "La"


def unify_line(text: str) -> str:
    """The unified name of an XRF line as written by any vendor, e.g. ``"Ca-Ka"``.

    Raises ``ValueError`` (saying what was expected) when ``text`` names no line: readers turn
    that into an :class:`~xrfhub.errors.InputError` naming the file and column.
    """
    original = text
    tokens = [t for t in _SEPARATORS.split(str(text).strip()) if t]
    if not tokens:
        raise ValueError(f"empty line name {original!r}")
    element, rest = _split_element(tokens[0])
    if element is None:
        raise ValueError(f"{original!r} does not start with an element symbol; expected a line "
                         "name such as 'Ca-Ka', 'Ca Ka', 'CaKa', 'Ca', 'Mo inc' or 'Rh-La-Coh'")
    tokens = ([rest] if rest else []) + tokens[1:]
    scatter = ""
    if tokens and tokens[-1].lower() in _SCATTER:
        scatter = _SCATTER[tokens.pop().lower()]
    line = _line("".join(tokens), element, original)
    if not line and not scatter:
        line = default_line(element)
    return "-".join(part for part in (element, line, scatter) if part)


def element_of(line: str) -> str:
    """The element of a line name in any spelling (``"Ca-Ka"`` -> ``"Ca"``, ``"Mo inc"`` -> ``"Mo"``)."""
    return unify_line(line).split("-", 1)[0]


def is_line(text: str) -> bool:
    """True when ``text`` is a line name :func:`unify_line` understands."""
    try:
        unify_line(text)
    except ValueError:
        return False
    return True


def _split_element(token: str) -> tuple[str | None, str]:
    """The element symbol a token opens with and what follows it (``"CaKa"`` -> Ca, Ka).

    Two-letter symbols are tried first ("CoKa" is cobalt, not carbon); a glued remainder must
    be a line or a scatter word, so "Sc" stays scandium rather than sulfur + "c".
    """
    whole = token[:1].upper() + token[1:].lower()
    if whole in _Z:
        return whole, ""
    for size in (2, 1):
        symbol = token[:1].upper() + token[1:size].lower()
        rest = token[size:]
        if symbol in _Z and rest and (rest.lower() in _SCATTER or _LINE.match(rest)
                                      or _SUM_TWICE.match(rest) or _SUM_PAIR.match(rest)):
            return symbol, rest
    return None, ""


def _line(text: str, element: str, original: str) -> str:
    """The unified line part ("Ka", "Lb1", "Ka+Kb"), "" when ``text`` is empty."""
    if not text:
        return ""
    match = _LINE.match(text)
    if match:
        shell, greek, index = match.groups()
        return shell.upper() + _GREEK[greek.lower()] + index
    shell_of = default_line(element)[0]  # ITRAX "Fe a*2": the shell is the element's usual one
    match = _SUM_TWICE.match(text)
    if match:
        shell = (match.group(1) or shell_of).upper() + match.group(2).lower()
        return f"{shell}+{shell}"
    match = _SUM_PAIR.match(text)
    if match:
        first = (match.group(1) or shell_of).upper() + match.group(2).lower()
        second = (match.group(3) or shell_of).upper() + match.group(4).lower()
        return f"{first}+{second}"
    raise ValueError(f"{original!r}: {text!r} is not a line of {element}; expected e.g. 'Ka', 'Kb', "
                     "'La', 'Lb1' (optionally followed by 'inc' or 'coh' for a scatter peak)")
