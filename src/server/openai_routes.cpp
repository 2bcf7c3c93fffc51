// OpenAI-compatible endpoints: POST /v1/chat/completions, POST /v1/completions,
// GET /v1/models. Streaming uses server-sent events ending with "data: [DONE]".

#include <ctime>

#include "server/routes.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace swapmoe::server {

namespace {

// Fields both endpoints accept. Some are accepted and ignored because official clients
// and common tools send them with neutral values (penalties of 0, a user id, ...).
#define OPENAI_COMMON_FIELDS                                                                                    \
  "model", "temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed", "stream", "stream_options", \
      "n", "frequency_penalty", "presence_penalty", "logit_bias", "user", "logprobs", "top_logprobs",        \
      "repeat_penalty", "metadata", "store", "service_tier"

struct Common {
  GenRequest gen;
  bool stream = false;
  bool include_usage = false;
};

// Parses the sampling and streaming fields shared by both endpoints.
Common parse_common(const json& body, const char* max_tokens_key2, const ModelLease& m) {
  Common c;
  c.gen = request_defaults(m);
  if (auto v = opt_number(body, "temperature", 0, 2)) c.gen.sampling.temp = static_cast<float>(*v);
  if (auto v = opt_number(body, "top_p", 0, 1)) c.gen.sampling.top_p = static_cast<float>(*v);
  if (auto v = opt_number(body, "min_p", 0, 1)) c.gen.sampling.min_p = static_cast<float>(*v);
  if (auto v = opt_int(body, "top_k", 0, SamplerLimits::top_k_max)) c.gen.sampling.top_k = static_cast<int>(*v);
  if (auto v = opt_int(body, "seed", INT64_MIN, INT64_MAX)) c.gen.sampling.seed = static_cast<uint64_t>(*v);
  if (auto v = opt_int(body, "max_tokens", 1, 1 << 30)) c.gen.max_tokens = *v;
  if (max_tokens_key2)
    if (auto v = opt_int(body, max_tokens_key2, 1, 1 << 30)) c.gen.max_tokens = *v;
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) c.gen.stop = opt_stop(body, "stop", 16);
  c.stream = opt_bool(body, "stream").value_or(false);
  (void)opt_string(body, "model");
  (void)opt_string(body, "user");
  (void)opt_number(body, "frequency_penalty", -2, 2);
  (void)opt_number(body, "presence_penalty", -2, 2);
  (void)opt_number(body, "repeat_penalty", 0, 10);
  (void)opt_object(body, "logit_bias");
  (void)opt_object(body, "metadata");
  if (auto n = opt_int(body, "n", 1, 128); n && *n != 1) bad_request("'n' must be 1 (one choice per request)");
  if (auto lp = body.find("logprobs"); lp != body.end() && !lp->is_null() && *lp != false && *lp != 0)
    bad_request("'logprobs' is not supported");
  const json so = opt_object(body, "stream_options");
  check_fields(so, {"include_usage", "include_obfuscation"}, "stream_options");
  c.include_usage = opt_bool(so, "include_usage").value_or(false);
  return c;
}

json usage_json(const GenResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens}};
}

std::string finish_reason(const GenResult& r) { return r.finish_reason == "length" ? "length" : "stop"; }

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

std::string sse_error(const GenResult& r) {
  return sse({{"error", {{"message", r.error}, {"type", "server_error"}, {"param", nullptr}, {"code", 500}}}});
}

json error_body(const GenResult& r) {
  return {{"error", {{"message", r.error}, {"type", "server_error"}, {"param", nullptr}, {"code", 500}}}};
}

std::vector<ChatMessage> parse_messages(const json& body) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array()) bad_request("'messages' must be an array of messages");
  if (it->empty()) bad_request("'messages' is empty");
  std::vector<ChatMessage> out;
  for (const auto& m : *it) {
    if (!m.is_object()) bad_request("each message must be an object");
    check_fields(m, {"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "refusal"},
                 "a message");
    ChatMessage cm;
    const auto role = opt_string(m, "role");
    if (!role || role->empty()) bad_request("each message needs a 'role' string");
    cm.role = *role;
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
      if (cm.role != "assistant") bad_request("a ", cm.role, " message needs 'content'");
      cm.content = std::nullopt;
    } else {
      cm.content = message_text(*c, "message");
    }
    cm.name = opt_string(m, "name").value_or("");
    cm.tool_call_id = opt_string(m, "tool_call_id").value_or("");
    cm.reasoning_content = opt_string(m, "reasoning_content");
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      if (!tc->is_array()) bad_request("'tool_calls' must be an array");
      cm.tool_calls = *tc;
    }
    out.push_back(std::move(cm));
  }
  return out;
}

void chat_completions(ApiServer::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req.body);
  check_fields(body,
               {OPENAI_COMMON_FIELDS, "messages", "max_completion_tokens", "tools", "tool_choice",
                "parallel_tool_calls", "response_format", "reasoning_effort", "chat_template_kwargs", "modalities",
                "prediction", "audio", "web_search_options"},
               "the request");
  const Lease m = s.models.acquire(opt_string(body, "model"));
  Common c = parse_common(body, "max_completion_tokens", *m);
  const std::vector<ChatMessage> msgs = parse_messages(body);
  json extra = opt_object(body, "chat_template_kwargs");
  bool tools = false;
  if (auto t = body.find("tools"); t != body.end() && !t->is_null()) {
    if (!t->is_array()) bad_request("'tools' must be an array");
    extra["tools"] = *t;
    tools = !t->empty();
  }
  if (auto e = opt_string(body, "reasoning_effort")) extra["reasoning_effort"] = *e;
  const json rf = opt_object(body, "response_format");
  if (auto t = opt_string(rf, "type"); t && *t != "text") bad_request("response_format '", *t, "' is not supported");
  // tool_choice is accepted and ignored; with tools offered, <tool_call> blocks in the
  // reply become tool_calls (tool_calls.h).
  if (auto tc = body.find("tool_choice"); tc != body.end() && tc->is_string() && *tc == "none") tools = false;

  Prompt p = m->prompter().chat(msgs, extra.empty() ? json(nullptr) : extra);
  c.gen.prompt = std::move(p.tokens);
  c.gen.start_in_think = p.start_in_think;
  c.gen.harmony = p.harmony;
  for (auto& st : m->prompter().chat_stops()) c.gen.stop.push_back(st);
  auto job = start_job(m, std::move(c.gen));

  const std::string id = random_id("chatcmpl-");
  const auto created = static_cast<int64_t>(std::time(nullptr));
  const std::string model = m->name();
  if (!c.stream) {
    send_when_done(res, job, [id, created, model, tools](const GenResult& r, const TextDelta& all) {
      if (r.finish_reason == "error") return dump(error_body(r));
      json msg = {{"role", "assistant"}, {"content", all.content}};
      if (!all.reasoning.empty()) msg["reasoning_content"] = all.reasoning;
      std::string finish = finish_reason(r);
      if (tools) {
        ParsedToolCalls calls = parse_tool_calls(all.content);
        if (!calls.calls.empty()) {
          msg["content"] = calls.content.empty() ? json(nullptr) : json(calls.content);
          msg["tool_calls"] = std::move(calls.calls);
          finish = "tool_calls";
        }
      }
      json out = {{"id", id},
                  {"object", "chat.completion"},
                  {"created", created},
                  {"model", model},
                  {"choices", json::array({{{"index", 0},
                                            {"message", msg},
                                            {"logprobs", nullptr},
                                            {"finish_reason", finish}}})},
                  {"usage", usage_json(r)}};
      return dump(out);
    });
    return;
  }
  auto chunk = [id, created, model](json delta, json finish) {
    return json{{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model},
                {"choices", json::array({{{"index", 0},
                                          {"delta", std::move(delta)},
                                          {"logprobs", nullptr},
                                          {"finish_reason", std::move(finish)}}})}};
  };
  // The first chunk announces the role, as OpenAI's API does.
  auto first = std::make_shared<bool>(true);
  // With tools offered, content is held back from the first <tool_call> on.
  auto calls = tools ? std::make_shared<ToolCallStream>() : nullptr;
  const bool include_usage = c.include_usage;
  send_stream(
      res, job, "text/event-stream",
      [chunk, first, calls](const TextDelta& d) {
        std::string out;
        if (*first) {
          out += sse(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
          *first = false;
        }
        if (!d.reasoning.empty()) out += sse(chunk({{"reasoning_content", d.reasoning}}, nullptr));
        const std::string content = calls ? calls->push(d.content) : d.content;
        if (!content.empty()) out += sse(chunk({{"content", content}}, nullptr));
        return out;
      },
      [chunk, first, calls, include_usage, id, created, model](const GenResult& r) {
        std::string out;
        if (r.finish_reason == "error") return sse_error(r) + "data: [DONE]\n\n";
        if (*first) out += sse(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
        std::string finish = finish_reason(r);
        if (calls) {
          ParsedToolCalls p = calls->finish();
          if (!p.content.empty()) out += sse(chunk({{"content", p.content}}, nullptr));
          if (!p.calls.empty()) {
            // Each call in one delta, with its index (clients merge deltas by index).
            json list = json::array();
            for (size_t i = 0; i < p.calls.size(); ++i) {
              json c = p.calls[i];
              c["index"] = i;
              list.push_back(std::move(c));
            }
            out += sse(chunk({{"tool_calls", std::move(list)}}, nullptr));
            finish = "tool_calls";
          }
        }
        out += sse(chunk(json::object(), finish));
        if (include_usage)
          out += sse({{"id", id},
                      {"object", "chat.completion.chunk"},
                      {"created", created},
                      {"model", model},
                      {"choices", json::array()},
                      {"usage", usage_json(r)}});
        return out + "data: [DONE]\n\n";
      });
}

void completions(ApiServer::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req.body);
  check_fields(body, {OPENAI_COMMON_FIELDS, "prompt", "echo", "suffix", "best_of"}, "the request");
  const Lease m = s.models.acquire(opt_string(body, "model"));
  Common c = parse_common(body, nullptr, *m);
  auto pit = body.find("prompt");
  std::string prompt;
  if (pit == body.end() || pit->is_null()) bad_request("'prompt' is required");
  if (pit->is_string()) {
    prompt = pit->get<std::string>();
  } else if (pit->is_array() && pit->size() == 1 && (*pit)[0].is_string()) {
    prompt = (*pit)[0].get<std::string>();
  } else {
    bad_request("'prompt' must be a string (or an array holding one string)");
  }
  if (opt_bool(body, "echo").value_or(false)) bad_request("'echo' is not supported");
  if (auto sfx = opt_string(body, "suffix"); sfx && !sfx->empty()) bad_request("'suffix' is not supported");
  if (auto b = opt_int(body, "best_of", 1, 128); b && *b != 1) bad_request("'best_of' must be 1");

  Prompt p = m->prompter().raw(prompt);
  c.gen.prompt = std::move(p.tokens);
  c.gen.split_think = false;  // a raw completion continues text as it is
  auto job = start_job(m, std::move(c.gen));

  const std::string id = random_id("cmpl-");
  const auto created = static_cast<int64_t>(std::time(nullptr));
  const std::string model = m->name();
  auto body_of = [id, created, model](const std::string& text, json finish) {
    return json{{"id", id},
                {"object", "text_completion"},
                {"created", created},
                {"model", model},
                {"choices", json::array({{{"text", text},
                                          {"index", 0},
                                          {"logprobs", nullptr},
                                          {"finish_reason", std::move(finish)}}})}};
  };
  if (!c.stream) {
    send_when_done(res, job, [body_of](const GenResult& r, const TextDelta& all) {
      if (r.finish_reason == "error") return dump(error_body(r));
      json out = body_of(all.content, finish_reason(r));
      out["usage"] = usage_json(r);
      return dump(out);
    });
    return;
  }
  const bool include_usage = c.include_usage;
  send_stream(
      res, job, "text/event-stream",
      [body_of](const TextDelta& d) { return d.content.empty() ? std::string() : sse(body_of(d.content, nullptr)); },
      [body_of, include_usage](const GenResult& r) {
        if (r.finish_reason == "error") return sse_error(r) + "data: [DONE]\n\n";
        json last = body_of("", finish_reason(r));
        if (include_usage) last["usage"] = usage_json(r);
        return sse(last) + "data: [DONE]\n\n";
      });
}

}  // namespace

void add_openai_routes(ApiServer::Impl& s) {
  post_json(s, "/v1/chat/completions", false, [&s](const httplib::Request& req, httplib::Response& res) {
                chat_completions(s, req, res);
              });
  post_json(s, "/v1/completions", false, [&s](const httplib::Request& req, httplib::Response& res) {
                completions(s, req, res);
              });
  auto model_obj = [&s](const std::string& name) {
    return json{{"id", name},
                {"object", "model"},
                {"created", static_cast<int64_t>(std::chrono::system_clock::to_time_t(s.started))},
                {"owned_by", "swapmoe"}};
  };
  // Single mode lists its one model; store mode every model of the stores.
  s.http.Get("/v1/models", guarded(s, false, [&s, model_obj](const httplib::Request&, httplib::Response& res) {
               json data = json::array();
               for (const auto& m : s.models.catalog()) data.push_back(model_obj(m.name));
               send_json(res, {{"object", "list"}, {"data", std::move(data)}});
             }));
  s.http.Get(R"(/v1/models/(.+))", guarded(s, false, [&s, model_obj](const httplib::Request& req, httplib::Response& res) {
               const std::string id = req.matches[1];
               if (s.models.store_mode()) {
                 send_json(res, model_obj(s.models.find(id).name));
                 return;
               }
               if (id != s.cfg.model_name) throw HttpError(404, "model '" + id + "' not found", "not_found_error");
               send_json(res, model_obj(id));
             }));
}

}  // namespace swapmoe::server
