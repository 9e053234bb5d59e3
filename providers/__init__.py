"""Translation between the Anthropic Messages API and other providers' wire formats.

Pure functions and an incremental stream translator, no I/O: the forwarder calls them
around its request to an OpenAI-format backend (OpenAI Chat Completions, which vLLM,
Ollama, llama.cpp and the OpenAI-compatible gateways share). Imports only
`streaming/` (its SSE decoder).

- `to_openai_request` (providers.openai_request, turns in providers.openai_messages,
  thinking and effort in providers.effort): a Messages request → a Chat Completions
  request; `Unsupported` names what the backend cannot express (→ 400), `Malformed`
  what is not a Messages request.
- `from_openai_response`, `parse_completion` (providers.openai_response): a
  completion body → the message.
- `OpenAIStreamTranslator` (providers.openai_stream): a chunk stream → Anthropic SSE.
- `anthropic_error_from_openai`, `timeout_error`, `BackendFailure`
  (providers.openai_errors): errors in Anthropic's shape and status.
- `estimate_input_tokens` (providers.estimate): count_tokens, marked as an estimate.
"""

from providers.estimate import estimate_input_tokens
from providers.openai_errors import BackendFailure, anthropic_error_from_openai, timeout_error
from providers.openai_request import DEFAULT_OPTIONS, OpenAIOptions, to_openai_request
from providers.openai_response import from_openai_response, parse_completion
from providers.openai_stream import OpenAIStreamTranslator
from providers.refusal import Malformed, RequestRefused, Unsupported

__all__ = [
    "DEFAULT_OPTIONS",
    "BackendFailure",
    "Malformed",
    "OpenAIOptions",
    "OpenAIStreamTranslator",
    "RequestRefused",
    "Unsupported",
    "anthropic_error_from_openai",
    "estimate_input_tokens",
    "from_openai_response",
    "parse_completion",
    "timeout_error",
    "to_openai_request",
]
