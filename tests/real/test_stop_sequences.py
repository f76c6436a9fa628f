"""Stop sequences against the real Ollama 0.24: what Ollama shows when one ends an answer
(`done_reason: "stop"` as for the end of the turn, the stop text cut out), and the
`stop_reason` / `stop_sequence` the gateway's `/v1/messages` derives from it
(src/anthropic/stop.rs, README "Anthropic Messages"). The tiny model at temperature 0 answers
"hello" with the tokens " back", " well", " out", " out", ..."""

from __future__ import annotations

import pytest

from conftest import sse_events

HELLO = [{"role": "user", "content": "hello"}]


def native(direct, stop):
    body = {"model": "tiny", "messages": HELLO, "stream": False, "logprobs": True,
            "options": {"temperature": 0, "num_predict": 8, "stop": stop}}
    response = direct.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_what_ollama_shows_when_a_stop_sequence_fires(direct):
    # No stop: eight tokens, each with its logprob entry.
    plain = native(direct, ["xyz"])
    assert plain["done_reason"] == "length" and plain["eval_count"] == 8
    assert [e["token"] for e in plain["logprobs"]][:3] == [" back", " well", " out"]
    # Inside a token: the text is cut, the token's entry keeps all of it, nothing is hidden.
    inside = native(direct, ["ell"])
    assert inside["message"]["content"] == " back w"
    assert inside["done_reason"] == "stop"
    assert [e["token"] for e in inside["logprobs"]] == [" back", " well"]
    assert inside["eval_count"] == len(inside["logprobs"])
    # Over two tokens from inside the first: one token hidden.
    across = native(direct, ["well out"])
    assert across["message"]["content"] == " back "
    assert [e["token"] for e in across["logprobs"]] == [" back", " well"]
    assert across["eval_count"] == len(across["logprobs"]) + 1
    # Two whole tokens: both hidden with their entries.
    whole = native(direct, [" well out"])
    assert whole["message"]["content"] == " back"
    assert whole["eval_count"] == len(whole["logprobs"]) + 2
    # Exactly one whole token: one hidden token and nothing else to see, which is also what the
    # end-of-turn token leaves (no text, no entry, counted): the two cannot be told apart.
    one = native(direct, [" well"])
    assert one["message"]["content"] == " back"
    assert one["eval_count"] == len(one["logprobs"]) + 1
    assert one["done_reason"] == "stop"


def messages(gateway, stop, stream=False):
    body = {"model": "tiny", "max_tokens": 8, "temperature": 0, "messages": HELLO,
            "stop_sequences": stop, "stream": stream}
    response = gateway.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    if not stream:
        return response.json()
    events, _ = sse_events(response)
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    (delta,) = [e["delta"] for e in events if e["type"] == "message_delta"]
    assert events[-1]["type"] == "message_stop"
    return {"text": text, "delta": delta}


@pytest.mark.parametrize(
    "stop, text, reason, sequence",
    [
        (["nope", "ell"], " back w", "stop_sequence", "ell"),
        (["well out"], " back ", "stop_sequence", "well out"),
        ([" well out"], " back", "stop_sequence", " well out"),
        # The one case Ollama's answer cannot tell from the end of the turn (README).
        ([" well"], " back", "end_turn", None),
        (["xyz"], " back well out out out out out out", "max_tokens", None),
    ],
)
def test_messages_stop_reason(gateway, stop, text, reason, sequence):
    whole = messages(gateway, stop)
    assert whole["content"][0]["text"] == text
    assert (whole["stop_reason"], whole["stop_sequence"]) == (reason, sequence)
    streamed = messages(gateway, stop, stream=True)
    assert streamed["text"] == text
    assert streamed["delta"] == {"stop_reason": reason, "stop_sequence": sequence}
