"""What of a chat fits a model's context window: every text a service sends is capped here.

A model's context holds the question and the answer. Text beyond it is not refused by the
servers: Ollama silently drops the *start* of the prompt (the system prompt first), so an
oversized caller text would quietly turn the model into one without instructions. Every
request is therefore fitted before it is sent (``ChatModelSettings.chat_request``): the
text of its messages must fit in the window less the answer's tokens (``num_predict``) and
the chat template's; when it does not, the longest messages other than the system prompt
lose their tail, and the request says what was cut.

Tokens are estimated, not counted: the served model's tokenizer (gpt-oss's o200k, LLaVA's
Llama vocabulary, whatever an OpenAI-compatible server runs) is not available offline and
differs per model. The estimate is conservative for every byte-level BPE vocabulary we
serve: ASCII text at 3 characters per token (English averages about 4; code, numbers and
hex about 3) and every other character as a whole token (Cyrillic and Greek average
2–4 characters per token, CJK about 1). Images are not counted: their cost depends on the
model (LLaVA 1.6 spends up to 2,880 tokens on one), and a service sends a fixed number of
downscaled ones.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from services.common.llm.chat import ChatMessage
from services.common.logs import get_logger

__all__ = ["TEMPLATE_TOKENS", "estimate_tokens", "fit_messages", "input_budget"]

_log = get_logger(__name__)

ASCII_CHARS_PER_TOKEN: Final = 3
TEMPLATE_TOKENS: Final = 128
"""Tokens kept for the chat template's role markers and separators."""
_CUT_MARK = " … [cut]"


def estimate_tokens(text: str) -> int:
    """A conservative estimate of the tokens ``text`` takes (see the module docstring).

    Args:
        text: Any text.

    Returns:
        The estimate; at least the true count for the served vocabularies.
    """
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / ASCII_CHARS_PER_TOKEN) + (len(text) - ascii_chars)


def input_budget(context_tokens: int, answer_tokens: int) -> int:
    """Tokens the messages of one request may take.

    Args:
        context_tokens: The model's context window (``num_ctx``).
        answer_tokens: Tokens kept for the answer, thinking included (``num_predict``).

    Returns:
        The window less the answer and the template; at least a quarter of the window.
    """
    return max(context_tokens - answer_tokens - TEMPLATE_TOKENS, context_tokens // 4)


def fit_messages(
    messages: tuple[ChatMessage, ...], budget_tokens: int
) -> tuple[tuple[ChatMessage, ...], tuple[str, ...]]:
    """Cuts the messages' texts so that together they fit ``budget_tokens``.

    The system prompt is never cut; of the others, the longest loses its tail first (a
    caller's text is the only one that grows without bound), marked ``… [cut]``.

    Args:
        messages: The chat, the question last.
        budget_tokens: What the texts may take (:func:`input_budget`).

    Returns:
        The messages (the same ones when they fit) and one note per cut message, naming
        the message and how many characters it kept.
    """
    costs = [estimate_tokens(m.content) for m in messages]
    over = sum(costs) - budget_tokens
    fitted = list(messages)
    notes: list[str] = []
    mark_tokens = estimate_tokens(_CUT_MARK)
    cut: set[int] = set()
    while over > 0:
        candidates = [
            i for i, m in enumerate(fitted) if m.role != "system" and i not in cut and costs[i]
        ]
        if not candidates:
            break
        index = max(candidates, key=costs.__getitem__)
        message = fitted[index]
        keep_tokens = max(costs[index] - over - mark_tokens, 0)
        kept = _prefix_within(message.content, keep_tokens)
        fitted[index] = replace(message, content=kept + _CUT_MARK)
        cut.add(index)
        notes.append(
            f"the {message.role} message #{index + 1} has {len(message.content)} characters "
            f"(about {costs[index]} tokens) and was cut to its first {len(kept)} to fit the "
            f"model's context ({budget_tokens} tokens for the question)"
        )
        new_cost = estimate_tokens(fitted[index].content)
        over -= costs[index] - new_cost
        costs[index] = new_cost
    if not notes:
        return messages, ()
    for note in notes:
        _log.warning("model input cut", extra={"cut": note})
    return tuple(fitted), tuple(notes)


def _prefix_within(text: str, tokens: int) -> str:
    """The longest prefix of ``text`` whose estimate is at most ``tokens``, ending at a
    space when one is near, so no word is halved."""
    # Counted in ASCII characters: any other character costs a whole token's worth.
    room = ASCII_CHARS_PER_TOKEN * tokens
    end = 0
    while end < len(text):
        room -= 1 if text[end].isascii() else ASCII_CHARS_PER_TOKEN
        if room < 0:
            break
        end += 1
    else:
        return text
    prefix = text[:end]
    space = prefix.rfind(" ", max(0, end - 80))
    return prefix[:space] if space > 0 else prefix
