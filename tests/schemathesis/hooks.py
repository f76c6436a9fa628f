"""Schemathesis hooks for run.sh: the one kind of failure this suite drops, and why.

`positive_data_acceptance` (ST202) sends requests its JSON Schema allows and expects them
accepted. Three kinds of rule decide a request's fate that no JSON Schema can state, so a
request can match its schema and still be rightly refused with 400:

- what the named model can do: Ollama refuses `think` for a model without thinking, tools for
  a model without tools, chat or generate for an embedding model ("\"llama3.2\" does not
  support thinking"). The schema names a model by a string; which models exist and what each
  can do is the server's state, like an id that does not exist (which the check allows as 404).
- a rule between two fields: `tool_choice` naming a tool that is not in `tools` (or asking
  for any tool with no `tools`), an Anthropic thinking budget not below `max_tokens`. JSON
  Schema cannot make one field's value depend on another's.
- what a string holds: a tool call's `arguments` is the JSON text of an object. The document
  says so (`contentMediaType: application/json`), but JSON Schema's content keywords are
  annotations no validator or generator applies.

`drop_rightful_refusals` drops an ST202 failure only when the gateway did the right thing, which
it checks for itself rather than trusting the message: the answer is a 400 in the shape of the
operation's surface, and either
- its message is Ollama's capability refusal for the model the request names, the request
  asks for that capability, and the model's `/api/show` (asked of the gateway under test) does
  not list it; or
- the request's `tool_choice` names a tool its `tools` lack (or asks for one with no
  `tools`) and the refusal names `tool_choice`; or its `thinking.budget_tokens` is not below
  its `max_tokens` and the refusal names `thinking.budget_tokens`; or
- the refusal names a tool call's `arguments` as not the JSON text of an object, and the
  string at that place in the request is not one.
Every other failure, every other status and every other check is kept. A dropped failure is
still counted in schemathesis' summary ("dropped by filter_failure").
"""

from __future__ import annotations

import functools
import json
import os
import re

import requests
import schemathesis

# Ollama's capability refusals: `"llama3.2" does not support thinking`, and for tools
# `registry.ollama.ai/library/llava:latest does not support tools`.
CAPABILITY_REFUSAL = re.compile(r'^(?:"(?P<quoted>[^"]+)"|(?P<bare>\S+)) does not support (?P<what>\w+)$')
# What each refusal says is missing, as /api/show lists capabilities.
CAPABILITY = {"thinking": "thinking", "tools": "tools", "chat": "completion", "generate": "completion"}
# Operations that chat (or generate) with the model they name.
CHATS = {"/api/chat", "/chat", "/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens"}
GENERATES = {"/api/generate", "/v1/completions"}


def surface(path: str) -> str:
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "ollama"


def refusal_message(path: str, body: object) -> tuple[str, str | None] | None:
    """The refusal's message and the field it names, if `body` is a 400 body in the shape of
    `path`'s surface; None otherwise."""
    if not isinstance(body, dict):
        return None
    kind = surface(path)
    if kind == "ollama":
        message = body.get("error")
        return (message, None) if set(body) == {"error"} and isinstance(message, str) else None
    error = body.get("error")
    if not isinstance(error, dict) or error.get("type") != "invalid_request_error":
        return None
    message = error.get("message")
    if not isinstance(message, str):
        return None
    if kind == "anthropic":
        if body.get("type") != "error":
            return None
        field = message.split(":", 1)[0] if ":" in message else None
        return message, field
    return message, error.get("param")


@functools.cache
def capabilities(model: str) -> frozenset[str] | None:
    """The capabilities the gateway's `/api/show` lists for `model` (None if it has none)."""
    response = requests.post(
        f"{os.environ['GATEWAY_URL']}/api/show",
        json={"model": model},
        headers={"Authorization": f"Bearer {os.environ['GATEWAY_KEY']}"},
        timeout=15,
    )
    if response.status_code != 200:
        return None
    listed = response.json().get("capabilities")
    return frozenset(listed) if isinstance(listed, list) else None


def asks_thinking(body: dict) -> bool:
    """Whether the request asks for reasoning, in any surface's words."""
    think = body.get("think")
    if think is True or isinstance(think, str):
        return True
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        effort = effort or reasoning.get("effort")
    if isinstance(effort, str) and effort.strip().lower() not in ("", "none"):
        return True
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def asks(what: str, path: str, body: dict) -> bool:
    if what == "thinking":
        return asks_thinking(body)
    if what == "tools":
        return bool(body.get("tools"))
    if what == "chat":
        return path in CHATS
    if what == "generate":
        return path in GENERATES
    return False


def lacks_capability(path: str, body: dict, message: str) -> bool:
    """The refusal is Ollama's for a capability the named model lacks and the request asks for."""
    model = body.get("model")
    found = CAPABILITY_REFUSAL.match(message)
    if not isinstance(model, str) or not found or found["what"] not in CAPABILITY:
        return False
    named = found["quoted"] or found["bare"]
    if found["quoted"] is not None and named not in (model, f"{model}:latest"):
        return False
    if found["bare"] is not None and model.split(":")[0] not in named:
        return False
    listed = capabilities(model)
    return listed is not None and CAPABILITY[found["what"]] not in listed and asks(found["what"], path, body)


def tool_choice_unmet(path: str, body: dict, field: str | None) -> bool:
    """`tool_choice` asks for a tool `tools` cannot give (a named one it lacks, or any tool when
    it is empty), in the operation's own shape, and the refusal names `tool_choice`."""
    choice = body.get("tool_choice")
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    if path == "/v1/chat/completions":
        names = {t["function"].get("name") for t in tools if isinstance(t.get("function"), dict)}
        function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
        named = function.get("name") if isinstance(function, dict) else None
        any_tool = choice == "required"
    elif path == "/v1/responses":
        names = {t.get("name") for t in tools}
        named = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "function" else None
        any_tool = choice == "required"
    elif path.startswith("/v1/messages"):
        names = {t.get("name") for t in tools}
        named = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" else None
        any_tool = isinstance(choice, dict) and choice.get("type") == "any"
    else:
        return False
    unmet = (isinstance(named, str) and named not in names) or (any_tool and not tools)
    return unmet and (field or "").startswith("tool_choice")


def integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    return int(value)


def budget_not_below_max_tokens(path: str, body: dict, field: str | None) -> bool:
    """Anthropic's rule: an `enabled` thinking budget must be below `max_tokens`."""
    thinking = body.get("thinking")
    if path != "/v1/messages" or not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return False
    budget, most = integer(thinking.get("budget_tokens")), integer(body.get("max_tokens"))
    return budget is not None and most is not None and budget >= most and field == "thinking.budget_tokens"


def value_at(body: object, path: str) -> object:
    """The value at `messages[0].tool_calls[1].function.arguments` in `body` (None if absent)."""
    value = body
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if key and isinstance(value, dict):
            value = value.get(key)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    return value


def arguments_not_object_text(body: dict, field: str | None, message: str) -> bool:
    if not field or not field.endswith("arguments") or not message.endswith("must be the JSON text of an object"):
        return False
    text = value_at(body, field)
    if not isinstance(text, str) or not text.strip():
        return False
    try:
        return not isinstance(json.loads(text), dict)
    except ValueError:
        return True


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but a rightful refusal of schema-valid data (see the module's doc)."""
    return not drop_rightful_refusals(failure, case, response)


def drop_rightful_refusals(failure, case, response) -> bool:
    if failure.code != "ST202" or response.status_code != 400 or not isinstance(case.body, dict):
        return False
    path = case.operation.path
    try:
        refused = refusal_message(path, response.json())
    except ValueError:
        return False
    if refused is None:
        return False
    message, field = refused
    return (
        lacks_capability(path, case.body, message)
        or tool_choice_unmet(path, case.body, field)
        or budget_not_below_max_tokens(path, case.body, field)
        or arguments_not_object_text(case.body, field, message)
    )
