// Package server owns kvserve's HTTP API: llama-server's native routes and
// the OpenAI-compatible ones, over one model and its engine.Scheduler.
//
// Routes (llama-server's JSON field names):
//
//	GET  /health, /v1/health        200 {"status":"ok"}; 503 while the model loads
//	GET  /props                      default_generation_settings, total_slots, n_ctx (total),
//	                                 n_ctx_slot, model_path, chat_template, build_info,
//	                                 cache_type_k / cache_type_v ("mixed" when layers differ)
//	                                 and cache_types {k, v: per-layer types, rotate, page_tokens}
//	GET  /models, /v1/models         the one loaded model
//	POST /completion, /completions   llama-server's completion (SSE when stream)
//	POST /v1/completions             OpenAI completions
//	POST /v1/chat/completions        OpenAI chat completions (also /chat/completions)
//	POST /embedding, /embeddings     embeddings, llama-server's shape (Options.Embeddings; embed.go)
//	POST /v1/embeddings              embeddings, OpenAI's shape (float or base64)
//	POST /rerank, /v1/rerank, ...    rank-head scores (Options.Embeddings with Pooling "rank"; rerank.go)
//	POST /infill                     fill-in-the-middle with the model's FIM tokens (infill.go)
//	POST /v1/messages                Anthropic's Messages API, and /v1/messages/count_tokens (anthropic.go)
//	POST /v1/responses               OpenAI's Responses API (responses.go)
//	GET  /lora-adapters              LoRA adapters (Options.Lora) and their scales; POST sets them (lora.go)
//	POST /tokenize, /detokenize, /apply-template
//	GET  /slots                      per-slot state (?fail_on_no_slot=1: 503 when none idle)
//	POST /slots/{id}?action=save|restore|erase
//	GET  /metrics                    Prometheus text (with Options.Metrics)
//	GET  /, /webui/...               the web page (internal/webui; not with Options.NoWebUI):
//	                                 public, also served while the model loads
//
// More routes plug in with Server.Handle and get the same middleware;
// more metrics with Server.Registry.
//
// Behaviour where llama-server leaves a choice:
//
//   - Loading: the model loads after the listener starts; until then every
//     route answers 503 {"error":{...,"type":"unavailable_error","message":"Loading model"}}
//     (as llama-server), /health included.
//   - API keys: with Options.APIKeys every route but /health, /v1/health,
//     /models and /v1/models needs "Authorization: Bearer KEY" (or
//     "X-Api-Key: KEY"); /metrics needs it too, as in llama-server.
//     /v1/models names the model by its file name, not its path.
//   - Web origins: a browser request whose Origin is neither the server's
//     own nor in Options.CORSOrigins ("*": any) is refused with 403, its
//     preflight too; an allowed origin's preflight answers 200 with the
//     CORS headers (no credentials mode: keys travel in headers).
//   - Host names: a keyless server listening on loopback answers only to
//     Host localhost, *.localhost, an IP address or Options.AllowedHosts;
//     other names get 403 (a DNS-rebinding page is same-origin with
//     itself, so the origin check alone would not stop it).
//   - Context: Options.Ctx is the total, split evenly over the slots; 0
//     gives each slot the model's training context (cache pages are
//     allocated as tokens arrive, so that costs nothing up front).
//   - Admission: at most Slots completions run; others wait in the
//     scheduler's queue up to QueueTimeout (default 60 s; at most QueueMax
//     of them) and are then answered 503 unavailable_error with
//     Retry-After, before any response starts. A request pinned with
//     id_slot waits for its slot without holding back others. Under a
//     cache budget a request also waits until its reservation fits (see
//     engine.Scheduler); one that can never fit is refused at once (503).
//   - Limits: see docs/api.md, "Resource limits" (prompt size checked
//     before tokenizing, n_probs, stop strings, the size of answers built
//     in memory: Options.MaxResponseBytes).
//   - Errors: every error answer goes through WriteError and every JSON
//     body through one reader (decodeJSON; ReadJSON for extensions).
//   - Disconnects: a client that goes away (streaming or not) cancels its
//     request; the slot is freed at the next scheduler step.
//   - tokens_cached counts the tokens the slot caches when the request
//     ends (llama-server's n_past: the prompt and the generated tokens fed
//     back); timings.cache_n and usage.prompt_tokens_details.cached_tokens
//     count the prompt tokens reused from the slot's cache;
//     tokens_evaluated is the prompt length, timings.prompt_n the prompt
//     tokens actually evaluated.
//   - Sampling (samplers.go, internal/sample): every llama.cpp sampler with
//     llama-server's fields and order ("samplers"); logit_bias as an array
//     of [token, bias] pairs or an object, a token being an id or a text,
//     a bias a number or false; post_sampling_probs reports "prob" and
//     "top_probs" after the chain.
//   - Several prompts in one /completion request (multi.go) run as
//     parallel requests: an array of results with "index", or their
//     chunks interleaved, each with "index"; response_fields keeps the
//     given paths of /completion's answer.
//   - Speculative decoding (Options.Spec, DraftPath; engine's spec.go):
//     timings.draft_n and draft_n_accepted are reported only when the
//     request speculated, as llama-server does; speculative.n_max,
//     speculative.n_min and speculative.p_min override the server's
//     settings per request (n_max 0: no speculation). Constrained requests
//     do not speculate.
//   - n_predict 0 evaluates the prompt into the cache and generates
//     nothing; -1 generates until end of generation or the slot's context.
//   - Unknown request fields are ignored; known fields with a wrong type or
//     an out-of-range value are a 400, and so are features kvserve does not
//     implement when asked for (legacy functions, best_of other than 1, n
//     other than 1 on /completion or with streaming, echo, several prompts
//     on /v1/completions, image or audio content). OpenAI's n (up to 16)
//     runs n requests in parallel, one choice each (a fixed seed gives
//     choice i the seed+i).
//   - Constrained output (constrain.go, internal/grammar): "grammar"
//     (GBNF), "json_schema", and OpenAI's "response_format" (json_object,
//     json_schema) on every completion route, at most one of them. A
//     grammar or schema that does not compile, or that exceeds
//     grammar.DefaultLimits, is a 400 naming the construct; a grammar that
//     hits a run-time limit (parse stacks, depth) ends the request with a
//     400 (an error event once streaming). Tokens the grammar forbids are
//     masked before sampling, end of generation is allowed only when the
//     grammar can end, and generation stops (finish_reason "stop") when
//     it is complete; max_tokens cutting it short gives "length".
//   - Tools (tools.go, internal/toolcall) on /v1/chat/completions: tools,
//     tool_choice ("auto" by default with tools; "none"; "required"; a
//     named function), parallel_tool_calls (default false, as
//     llama-server). The format comes from the chat template's source
//     (toolcall.Detect); a template that does not render tools gets them
//     in a system message and reads the generic JSON format. "required"
//     and named choices are forced by a grammar built from the tools'
//     parameter schemas. Calls are parsed into message.tool_calls with
//     finish_reason "tool_calls"; output that does not parse is returned
//     as content with "stop". Streaming: a forced call's arguments stream
//     as they are generated; with "auto", calls are sent when the output
//     ends and parses. Assistant tool_calls and tool messages render
//     through the template (written as text in the format when it cannot
//     render them). Tool requests in the Llama 3 and Mistral formats render
//     special tokens (<|python_tag|> and [TOOL_CALLS] are control tokens).
//   - Reasoning: "reasoning_format" (default Options.ReasoningFormat,
//     --reasoning-format): auto separates <think>...</think> (and gpt-oss'
//     analysis channel) into reasoning_content when the template has
//     thinking markers; deepseek always; none never. Streamed as
//     delta.reasoning_content.
//   - Log-probabilities are of the plain softmax of the logits (before
//     sampling filters), as llama-server reports them for n_probs; a
//     log-probability of -Inf is reported as -9999. /v1/completions reports
//     OpenAI's legacy logprobs (tokens, token_logprobs, top_logprobs,
//     text_offset) plus llama-server's "content" list.
//   - Chat prompts are the model's chat template (internal/chat; ChatML
//     when the model has none) with the generation prompt added; text
//     content parts are joined with newlines. A trailing assistant message
//     is not continued ("prefilled"): the template renders it as a whole turn.
//     The answer ends at the template's end of turn: the end-of-generation
//     token when the marker is one token, else (a vocabulary without
//     <|im_end|>, say) the marker the template writes after an assistant
//     turn is added as a stop string (Server.turnEnd; not for harmony).
//   - Streaming: /completion sends one event per generated token and a
//     final event with stop=true, without [DONE]; the OpenAI routes end
//     with "data: [DONE]" after the finish chunk (which carries
//     llama-server's timings) and, with stream_options.include_usage, a
//     chunk with no choices and the usage. Text that may be the start of a
//     stop string, or an incomplete UTF-8 character, is held back and sent
//     with the next text (its tokens' logprobs with it). Errors after the
//     stream started are sent as an event {"error":{...}}.
//   - Slot files: see the format in slots.go. Save/restore need
//     Options.SlotSavePath (else 501); file names are plain names (no
//     separators, no ".."); an action on a busy slot waits for it (up to
//     the queue timeout, then 409, as does a name taken by a directory); a corrupt, truncated, foreign or mismatched file is
//     refused with a 400 naming the problem and the slot is left
//     unchanged. Errors name the file, never the directory. Temporary
//     files of saves interrupted by a crash are removed at start. A restore
//     takes optional "type_k" / "type_v": the pages are converted to them
//     on load; a file saved with another page size is repacked into this
//     server's pages (kvcache.ReadSeqAs; the same model and head shape
//     are required), and a file of other key/value channel settings is
//     converted into the server's. Converted on load, the rows equal what
//     /cache/requantize makes of the original.
//   - Shutdown (Serve's context ends, e.g. SIGTERM): stop accepting, answer
//     new requests on open connections 503, let in-flight requests finish
//     for up to ShutdownTimeout, then cancel them — a stream ends with an
//     error event and a properly terminated body — and close the
//     scheduler.
package server
