"""LaTeX math in paper titles and abstracts, as readable text: ``D$^2$Quant`` → ``D²Quant``.

arXiv titles and abstracts carry inline math between dollar signs (``$\\alpha$``, ``$\\mathcal{O}(n^2)$``).
Each ``$…$`` span is converted with pylatexenc's LaTeX-to-text converter, taught here to write
super- and subscripts as Unicode where every character has a form (``x^2`` → ``x²``, ``W_{i}`` →
``Wᵢ``) and as ``^x`` / ``^(…)`` where not. Everything outside a span is left exactly as it is: a
``$`` that opens no span (``$5 and $10``) is plain text, and a span that does not parse (an
unbalanced brace) or converts to nothing stays as written.

Applied when a paper is shown (the database keeps the raw text), once per distinct text per process.
"""

from __future__ import annotations

import functools
import re

from pylatexenc import latex2text, latexwalker, macrospec

# A span, much as pandoc reads ``$…$``: the opening ``$`` is followed by a non-space, the closing one
# follows a non-space (so "$5 and $10" is money, not math); a span that starts with a digit must
# not be followed by one either ("$10-$20" is money too, ``$\times$10`` is math).
_SPAN = re.compile(r"(?<![\\$])\$\$(?=\S)([^$]+?)(?<=\S)\$\$|(?<![\\$])\$(?=[^\s$])([^$]+?)(?<=[^\s\\])\$(?!\$)")

_SUPERSCRIPT = dict(
    zip(
        "0123456789+-=()nixabcdeghjklmoprstuvwyzABDEGHIJKLMNOPRTUVW*'",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˣᵃᵇᶜᵈᵉᵍʰʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ*′",
        strict=True,
    )
)
_SUBSCRIPT = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))
_LETTERS = re.compile(r"[^\W\d_]")
_SPACES = re.compile(r"\s+")


def _script(table: dict[str, str], mark: str):
    """``^x``/``_x``: Unicode super/subscripts for digits, signs and a single letter; else ``^x``, ``^(x y)``."""

    def to_text(node, l2tobj) -> str:
        args = node.nodeargd.argnlist if node.nodeargd is not None else []
        text = l2tobj.nodelist_to_text([args[0]]).strip() if args and args[0] is not None else ""
        if text and all(c in table for c in text) and len(_LETTERS.findall(text)) <= 1:
            return "".join(table[c] for c in text)
        if not text or text.isalnum() or len(text) == 1:
            return mark + text
        return f"{mark}({text})"

    return to_text


def _plain(node, l2tobj) -> str:
    """A font command's argument as plain text (``\\mathtt{foo}`` → ``foo``, not 𝚏𝚘𝚘)."""
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    return l2tobj.nodelist_to_text([args[0]]) if args and args[0] is not None else ""


class _ToText(latex2text.LatexNodes2Text):
    """Keeps the space written after a command without arguments: ``n \\log n`` → ``n log n``, not ``logn``."""

    def macro_node_to_text(self, node) -> str:
        text = super().macro_node_to_text(node)
        has_args = node.nodeargd is not None and any(a is not None for a in node.nodeargd.argnlist)
        return text + " " if text and node.macro_post_space and not has_args else text


@functools.lru_cache(maxsize=1)
def _converter() -> tuple[latexwalker.LatexContextDb, latex2text.LatexNodes2Text]:
    one_arg = macrospec.MacroStandardArgsParser("{")
    parse = latexwalker.get_default_latex_context_db()
    parse.add_context_category(
        "digest-scripts",
        prepend=True,
        specials=[macrospec.SpecialsSpec("^", args_parser=one_arg), macrospec.SpecialsSpec("_", args_parser=one_arg)],
        macros=[macrospec.MacroSpec("textsuperscript", "{"), macrospec.MacroSpec("textsubscript", "{")],
    )
    text = latex2text.get_default_latex_context_db()
    text.add_context_category(
        "digest-scripts",
        prepend=True,
        specials=[
            latex2text.SpecialsTextSpec("^", _script(_SUPERSCRIPT, "^")),
            latex2text.SpecialsTextSpec("_", _script(_SUBSCRIPT, "_")),
        ],
        macros=[
            latex2text.MacroTextSpec("textsuperscript", _script(_SUPERSCRIPT, "^")),
            latex2text.MacroTextSpec("textsubscript", _script(_SUBSCRIPT, "_")),
            *(latex2text.MacroTextSpec(name, _plain) for name in ("texttt", "mathtt", "mathsf", "mathit", "textsf", "mathnormal")),
            latex2text.MacroTextSpec("|", "‖"),
            latex2text.MacroTextSpec("checkmark", "✓"),
        ],
    )
    return parse, _ToText(latex_context=text, math_mode="text", strict_latex_spaces=True)


def _balanced(math: str) -> bool:
    depth = 0
    for match in re.finditer(r"\\.|[{}]", math):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def math_to_text(math: str) -> str | None:
    """One span's content as text, or None when it does not parse or says nothing."""
    if not _balanced(math):
        return None
    parse_context, converter = _converter()
    try:
        nodes, _, _ = latexwalker.LatexWalker(math, latex_context=parse_context, tolerant_parsing=False).get_latex_nodes()
        text = converter.nodelist_to_text(nodes)
    except (latexwalker.LatexWalkerError, IndexError, ValueError, TypeError, RecursionError):
        return None
    text = _SPACES.sub(" ", text).strip()
    return text or None


def _span(match: re.Match[str]) -> str:
    math = match.group(1) or match.group(2)
    after = match.string[match.end() : match.end() + 1]
    if math[0].isdigit() and after.isdigit():
        return match.group(0)
    text = math_to_text(math)
    return match.group(0) if text is None else text


@functools.lru_cache(maxsize=8192)  # a process shows a few thousand distinct titles and abstracts
def readable(text: str) -> str:
    """``text`` with each ``$…$`` math span as Unicode text; everything else exactly as it was."""
    if "$" not in text:
        return text
    return _SPAN.sub(_span, text)


SHORT_TITLE_CHARS = 48


@functools.lru_cache(maxsize=4096)
def short_title(title: str, limit: int = SHORT_TITLE_CHARS) -> str:
    """A title as a line names it in passing ("like “COAT: Compressing Optimizer states…”"): readable,
    on one line, cut at a word boundary to about ``limit`` characters with an ellipsis when cut."""
    text = _SPACES.sub(" ", readable(title)).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit // 2 else cut[:limit]
    return cut.rstrip(" ,;:.-–—(") + "…"
