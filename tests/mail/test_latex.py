"""LaTeX math in titles and abstracts shown as text, with real titles from arXiv / Daily Papers."""

from __future__ import annotations

from datetime import date

import pytest

from digest.mail.cards import PaperBlocks, paper_view
from digest.mail.latex import readable


@pytest.mark.parametrize(
    "raw, shown",
    [
        # real titles (Daily Papers / arXiv) with inline math
        (
            "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs",
            "D²Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs",
        ),
        (
            r"$\pi_0$: A Vision-Language-Action Flow Model for General Robot Control",
            "π₀: A Vision-Language-Action Flow Model for General Robot Control",
        ),
        (
            r"$\infty$-Brush: Controllable Large Image Synthesis with Diffusion Models in Infinite Dimensions",
            "∞-Brush: Controllable Large Image Synthesis with Diffusion Models in Infinite Dimensions",
        ),
        (r"$\alpha$-blending", "α-blending"),
        (
            r"Transformers are SSMs: Generalized Models and Efficient Algorithms with $\mathcal{O}(n)$ cost",
            "Transformers are SSMs: Generalized Models and Efficient Algorithms with 𝒪(n) cost",
        ),
        (r"Training with $10^{-3}$ of the data, $2\times$ faster", "Training with 10⁻³ of the data, 2× faster"),
        (r"$k$-NN and $\epsilon$-greedy", "k-NN and ϵ-greedy"),
        (r"SE(3) equivariance in $\mathbb{R}^3$ with $O(n \log n)$ attention", "SE(3) equivariance in ℝ³ with O(n log n) attention"),
        (r"$W_{\text{out}}$ and $x_i$", "W_out and xᵢ"),
        (r"$\textbf{R}^2$-Bench", "R²-Bench"),
        (r"GPT-4o$\rightarrow$o1: $\geq$90% on $\texttt{MATH}$", "GPT-4o→o1: ≥90% on MATH"),
        (r"Display $$E = mc^2$$ math", "Display E = mc² math"),
    ],
)
def test_inline_math_reads_as_text(raw, shown):
    assert readable(raw) == shown


@pytest.mark.parametrize(
    "raw",
    [
        "A $5 model beats a $100 one",  # a lone dollar: money, not math
        "Costs $5 and $10 per hour",  # two dollars, spaces inside: money
        "From $10-$20 per GPU hour",  # a span of digits followed by a digit: money
        r"Escaped \$ signs \$ stay",
        "we propose D^2Quant, a novel weight-only PTQ framework",  # no dollars: not math, left alone
        "Double  spaces,\ttabs and <b>markup</b> outside math stay exactly",
        "$ spaced $ is not math",
        r"Unbalanced $x^{2$ stays",
        r"Unknown $\frobnicate$ command stays",
        "",
    ],
)
def test_text_outside_math_and_what_is_not_math_is_left_exactly_as_is(raw):
    assert readable(raw) == raw


def test_only_the_math_spans_change():
    raw = r"Costs $5: $\alpha$ and  $\beta$  remain, <i>x</i>"
    assert readable(raw) == "Costs $5: α and  β  remain, <i>x</i>"


def test_cards_show_latex_as_text_and_the_database_keeps_the_raw_text(make_paper):
    paper = make_paper(
        "2601.23001",
        "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs",
        day=date(2026, 11, 29),
        abstract=r"We quantize to $\leq 4$ bits. Then we correct the $\ell_2$ error.",
    )
    view = paper_view(paper)
    assert view["title"] == "D²Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs"
    assert view["excerpt"] == "We quantize to ≤ 4 bits. Then we correct the ℓ₂ error."
    block = PaperBlocks().get(paper)
    assert "D&#178;Quant" in block.html and "D²Quant" in block.text and block.title.startswith("D²Quant")
    assert "$" not in block.html + block.text
    assert paper.title == "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs"  # raw text untouched


def test_each_distinct_text_is_converted_once_per_process():
    readable.cache_clear()
    title = r"$\alpha$-Flow: a title seen by every recipient"
    for _ in range(100):
        assert readable(title) == "α-Flow: a title seen by every recipient"
    info = readable.cache_info()
    assert (info.misses, info.hits) == (1, 99)
