// ollama-compatible endpoints: POST /api/generate, POST /api/chat (NDJSON streaming by
// default, one JSON object with "stream": false), GET /api/tags, POST /api/show,
// GET /api/version, GET /api/ps, and "GET /" (ollama answers "Ollama is running").

#include <ctime>
#include <map>
#include <mutex>

#include "gguf/gguf.h"
#include "server/routes.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace swapmoe::server {

namespace {

// Every option ollama documents; the ones swapmoe does not implement are accepted and
// ignored (clients send their defaults), anything else is a typo worth a 400.
void parse_options(const json& opts, GenRequest& g) {
  check_fields(opts,
               {"num_predict", "temperature", "top_k", "top_p", "min_p", "seed", "stop", "num_ctx", "num_keep",
                "typical_p", "repeat_last_n", "repeat_penalty", "presence_penalty", "frequency_penalty",
                "penalize_newline", "mirostat", "mirostat_tau", "mirostat_eta", "numa", "num_batch", "num_gpu",
                "main_gpu", "low_vram", "vocab_only", "use_mmap", "use_mlock", "num_thread", "tfs_z"},
               "options");
  if (auto v = opt_int(opts, "num_predict", -2, 1 << 30)) g.max_tokens = *v < 0 ? -1 : *v;
  if (auto v = opt_number(opts, "temperature", 0, SamplerLimits::temp_max)) g.sampling.temp = static_cast<float>(*v);
  if (auto v = opt_int(opts, "top_k", 0, SamplerLimits::top_k_max)) g.sampling.top_k = static_cast<int>(*v);
  if (auto v = opt_number(opts, "top_p", 0, 1)) g.sampling.top_p = static_cast<float>(*v);
  if (auto v = opt_number(opts, "min_p", 0, 1)) g.sampling.min_p = static_cast<float>(*v);
  if (auto v = opt_int(opts, "seed", INT64_MIN, INT64_MAX)) g.sampling.seed = static_cast<uint64_t>(*v);
  if (auto it = opts.find("stop"); it != opts.end() && !it->is_null()) g.stop = opt_stop(opts, "stop", 16);
  (void)opt_int(opts, "num_ctx", 0, INT64_MAX);
}

// The ollama "think" field: true/false, or a level string ("low", "medium", "high").
void parse_think(const json& body, json& extra) {
  auto it = body.find("think");
  if (it == body.end() || it->is_null()) return;
  if (it->is_boolean()) {
    extra["enable_thinking"] = it->get<bool>();
  } else if (it->is_string()) {
    extra["reasoning_effort"] = it->get<std::string>();
  } else {
    bad_request("'think' must be a boolean or a string");
  }
}

// What /api/generate and /api/chat share: structured output is refused; the sampling
// defaults, then "options" and "think" (template variables go to `extra`).
GenRequest request_from_body(const json& body, json& extra, const ModelLease& m) {
  if (auto f = body.find("format"); f != body.end() && !f->is_null() && !(f->is_string() && f->get<std::string>().empty()))
    bad_request("'format' (structured output) is not supported");
  GenRequest g = request_defaults(m);
  parse_options(opt_object(body, "options"), g);
  parse_think(body, extra);
  return g;
}

json timings(const GenResult& r) {
  auto ns = [](double s) { return static_cast<int64_t>(s * 1e9); };
  return {{"total_duration", ns(r.queue_seconds + r.prompt_seconds + r.decode_seconds)},
          {"load_duration", 0},
          {"prompt_eval_count", r.prompt_tokens},
          {"prompt_eval_duration", ns(r.prompt_seconds)},
          {"eval_count", r.completion_tokens},
          {"eval_duration", ns(r.decode_seconds)}};
}

std::string done_reason(const GenResult& r) { return r.finish_reason == "length" ? "length" : "stop"; }

std::string ndjson(const json& j) { return dump(j) + "\n"; }

// Runs a generation and answers in ollama's shape. make(delta, done) builds one object.
void respond(const Lease& m, httplib::Response& res, GenRequest gen, bool stream,
             std::function<json(const TextDelta&)> piece, std::function<void(json&, const GenResult&)> final_fields) {
  auto job = start_job(m, std::move(gen));
  const std::string model = m->name();
  auto last = [model, final_fields](const GenResult& r, const TextDelta& text, auto piece_fn) {
    json j = piece_fn(text);
    j["model"] = model;
    j["created_at"] = rfc3339_now();
    j["done"] = true;
    j["done_reason"] = done_reason(r);
    const json t = timings(r);
    for (auto it = t.begin(); it != t.end(); ++it) j[it.key()] = it.value();
    final_fields(j, r);
    return j;
  };
  if (!stream) {
    send_when_done(res, job, [last, piece](const GenResult& r, const TextDelta& all) {
      if (r.finish_reason == "error") return dump(json{{"error", r.error}});
      return dump(last(r, all, piece));
    });
    return;
  }
  send_stream(
      res, job, "application/x-ndjson",
      [model, piece](const TextDelta& d) {
        json j = piece(d);
        j["model"] = model;
        j["created_at"] = rfc3339_now();
        j["done"] = false;
        return ndjson(j);
      },
      [last, piece](const GenResult& r) {
        if (r.finish_reason == "error") return ndjson(json{{"error", r.error}});
        return ndjson(last(r, TextDelta{}, piece));
      });
}

json load_reply(const std::string& model) {
  return {{"model", model}, {"created_at", rfc3339_now()}, {"response", ""}, {"done", true}, {"done_reason", "load"}};
}

void generate(ApiServer::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req.body);
  check_fields(body,
               {"model", "prompt", "suffix", "system", "template", "context", "stream", "raw", "format", "options",
                "keep_alive", "images", "think", "logprobs", "top_logprobs"},
               "the request");
  const Lease m = s.models.acquire(opt_string(body, "model"));
  const auto prompt = opt_string(body, "prompt");
  const auto system = opt_string(body, "system");
  const bool raw = opt_bool(body, "raw").value_or(false);
  const bool stream = opt_bool(body, "stream").value_or(true);
  if (auto t = opt_string(body, "template"); t && !t->empty()) bad_request("'template' is not supported");
  if (auto sfx = opt_string(body, "suffix"); sfx && !sfx->empty()) bad_request("'suffix' is not supported");
  if (auto im = body.find("images"); im != body.end() && !im->is_null() && !(im->is_array() && im->empty()))
    bad_request("images are not supported");
  json extra = json::object();
  GenRequest g = request_from_body(body, extra, *m);
  std::vector<int32_t> context;
  if (auto c = body.find("context"); c != body.end() && !c->is_null()) {
    if (!c->is_array()) bad_request("'context' must be an array of token ids");
    const int64_t n_vocab = m->engine().model().tokenizer().n_vocab();
    for (const auto& t : *c) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
        bad_request("'context' holds a value that is not a token id");
      context.push_back(t.get<int32_t>());
    }
  }
  if (!prompt || prompt->empty()) {
    // ollama loads the model and answers at once when there is nothing to generate from.
    send_json(res, load_reply(m->name()));
    return;
  }
  Prompt p;
  if (raw) {
    p = m->prompter().raw(*prompt);
  } else {
    std::vector<ChatMessage> msgs;
    if (system && !system->empty()) {
      ChatMessage sys;
      sys.role = "system";
      sys.content = *system;
      msgs.push_back(std::move(sys));
    }
    ChatMessage user;
    user.role = "user";
    user.content = *prompt;
    msgs.push_back(std::move(user));
    p = m->prompter().chat(msgs, extra.empty() ? json(nullptr) : extra);
    for (auto& st : m->prompter().chat_stops()) g.stop.push_back(st);
  }
  // `context` continues an earlier answer: its tokens come first.
  if (!context.empty()) {
    if (!p.tokens.empty() && p.tokens.front() == m->engine().model().tokenizer().bos() && raw == false)
      p.tokens.erase(p.tokens.begin());
    p.tokens.insert(p.tokens.begin(), context.begin(), context.end());
  }
  g.prompt = p.tokens;
  g.start_in_think = p.start_in_think;
  g.harmony = p.harmony;
  g.split_think = !raw;
  const auto prompt_tokens = std::make_shared<std::vector<int32_t>>(p.tokens);
  respond(
      m, res, std::move(g), stream,
      [](const TextDelta& d) {
        json j = {{"response", d.content}};
        if (!d.reasoning.empty()) j["thinking"] = d.reasoning;
        return j;
      },
      [prompt_tokens](json& j, const GenResult& r) {
        std::vector<int32_t> ctx = *prompt_tokens;
        ctx.insert(ctx.end(), r.tokens.begin(), r.tokens.end());
        j["context"] = ctx;
      });
}

void chat(ApiServer::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req.body);
  check_fields(body,
               {"model", "messages", "tools", "format", "options", "stream", "keep_alive", "think", "logprobs",
                "top_logprobs"},
               "the request");
  const Lease lease = s.models.acquire(opt_string(body, "model"));
  const bool stream = opt_bool(body, "stream").value_or(true);
  json extra = json::object();
  GenRequest g = request_from_body(body, extra, *lease);
  bool tools = false;
  if (auto t = body.find("tools"); t != body.end() && !t->is_null()) {
    if (!t->is_array()) bad_request("'tools' must be an array");
    if (!t->empty()) extra["tools"] = *t;
    tools = !t->empty();
  }
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) {
    send_json(res, {{"model", lease->name()}, {"created_at", rfc3339_now()},
                    {"message", {{"role", "assistant"}, {"content", ""}}}, {"done", true}, {"done_reason", "load"}});
    return;
  }
  if (!it->is_array()) bad_request("'messages' must be an array");
  if (it->empty()) {
    send_json(res, {{"model", lease->name()}, {"created_at", rfc3339_now()},
                    {"message", {{"role", "assistant"}, {"content", ""}}}, {"done", true}, {"done_reason", "load"}});
    return;
  }
  std::vector<ChatMessage> msgs;
  for (const auto& m : *it) {
    if (!m.is_object()) bad_request("each message must be an object");
    check_fields(m, {"role", "content", "images", "thinking", "tool_calls", "tool_name"}, "a message");
    ChatMessage cm;
    const auto role = opt_string(m, "role");
    if (!role || role->empty()) bad_request("each message needs a 'role' string");
    cm.role = *role;
    cm.content = opt_string(m, "content").value_or("");
    if (auto im = m.find("images"); im != m.end() && !im->is_null() && !(im->is_array() && im->empty()))
      bad_request("images are not supported");
    cm.reasoning_content = opt_string(m, "thinking");
    cm.name = opt_string(m, "tool_name").value_or("");
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      if (!tc->is_array()) bad_request("'tool_calls' must be an array");
      cm.tool_calls = *tc;
    }
    msgs.push_back(std::move(cm));
  }
  Prompt p = lease->prompter().chat(msgs, extra.empty() ? json(nullptr) : extra);
  g.prompt = std::move(p.tokens);
  g.start_in_think = p.start_in_think;
  g.harmony = p.harmony;
  for (auto& st : lease->prompter().chat_stops()) g.stop.push_back(st);
  // With tools offered, <tool_call> blocks become message.tool_calls (tool_calls.h): text
  // from the first block on is held back and the calls go into the last message.
  auto calls = tools ? std::make_shared<ToolCallStream>() : nullptr;
  respond(
      lease, res, std::move(g), stream,
      [calls](const TextDelta& d) {
        json msg = {{"role", "assistant"}, {"content", calls ? calls->push(d.content) : d.content}};
        if (!d.reasoning.empty()) msg["thinking"] = d.reasoning;
        return json{{"message", msg}};
      },
      [calls](json& j, const GenResult& r) {
        if (!calls || r.finish_reason == "error") return;
        ParsedToolCalls p = calls->finish();
        json& msg = j["message"];
        msg["content"] = msg["content"].get<std::string>() + p.content;
        if (p.calls.empty()) return;
        json list = json::array();
        for (const auto& c : p.calls) list.push_back(ollama_tool_call(c));
        msg["tool_calls"] = std::move(list);
      });
}

// Details ollama shows for a model, from the GGUF metadata.
json model_details(const GgufFile& f) {
  const std::string arch = f.get_str("general.architecture", "unknown");
  uint64_t n_params = 0;
  for (const auto& t : f.tensors()) n_params += static_cast<uint64_t>(t.n_elements());
  std::string size;
  if (n_params >= 1000000000ull) size = cat(static_cast<double>(n_params / 100000000ull) / 10.0, "B");
  else size = cat(static_cast<double>(n_params / 100000ull) / 10.0, "M");
  std::string quant = "unknown";
  if (const GgufValue* v = f.find("general.file_type"); v && v->is_int()) quant = cat("file_type_", v->u ? v->u : v->i);
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", arch},
          {"families", json::array({arch})},
          {"parameter_size", size},
          {"quantization_level", quant}};
}

// The details of a listed model, from its GGUF header, read once per file (/api/tags lists
// every model of the stores on every call).
json cached_details(const store::StoreModel& m) {
  static std::mutex mu;
  static std::map<std::string, json> cache;
  const std::string key = cat(m.path, ":", m.size);
  {
    std::lock_guard<std::mutex> lk(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  json d;
  try {
    d = model_details(*GgufFile::open(m.path));
  } catch (const Error&) {
    d = {{"parent_model", ""}, {"format", "gguf"}, {"family", "unknown"}, {"families", json::array()},
         {"parameter_size", ""}, {"quantization_level", "unknown"}};
  }
  std::lock_guard<std::mutex> lk(mu);
  cache[key] = d;
  return d;
}

json tag_entry(const store::StoreModel& m) {
  const std::string digest = m.digest.rfind("sha256:", 0) == 0 ? m.digest.substr(7) : m.digest;
  return json{{"name", m.name},       {"model", m.name},   {"modified_at", rfc3339_now()},
              {"size", m.size},       {"digest", digest},  {"details", cached_details(m)}};
}

// The Modelfile PARAMETER lines ollama shows for a model's params layer.
std::string parameters_text(const store::ModelParams& p) {
  std::string out;
  auto line = [&](const std::string& k, const std::string& v) { out += k + std::string(std::max<size_t>(1, 16 - k.size()), ' ') + v + "\n"; };
  for (const auto& st : p.stop) line("stop", dump(json(st)));
  if (p.temperature) line("temperature", cat(*p.temperature));
  if (p.top_k) line("top_k", cat(*p.top_k));
  if (p.top_p) line("top_p", cat(*p.top_p));
  if (p.min_p) line("min_p", cat(*p.min_p));
  if (p.num_ctx) line("num_ctx", cat(*p.num_ctx));
  if (p.num_predict) line("num_predict", cat(*p.num_predict));
  if (p.seed) line("seed", cat(*p.seed));
  return out;
}

json metadata_json(const GgufFile& f) {
  json info = json::object();
  for (const auto& [key, v] : f.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) continue;  // vocabularies are huge
    if (v.type == GgufType::STRING) info[key] = v.s;
    else if (v.type == GgufType::BOOL) info[key] = v.u != 0;
    else if (v.is_int()) info[key] = v.type == GgufType::UINT64 || v.type == GgufType::UINT32 ||
                                             v.type == GgufType::UINT16 || v.type == GgufType::UINT8
                                         ? json(v.u)
                                         : json(v.i);
    else if (v.is_float()) info[key] = v.f;
  }
  return info;
}

// What ollama would list for this model: thinking and tools when the template knows them.
json capabilities(const std::string& tmpl) {
  json c = json::array({"completion"});
  // <think> blocks, or harmony's analysis channel (gpt-oss).
  if (tmpl.find("<think>") != std::string::npos || tmpl.find("<|channel|>") != std::string::npos)
    c.push_back("thinking");
  if (tmpl.find("tools") != std::string::npos) c.push_back("tools");
  return c;
}

}  // namespace

void add_ollama_routes(ApiServer::Impl& s) {
  s.http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain");
  });
  post_json(s, "/api/generate", true, [&s](const httplib::Request& req, httplib::Response& res) {
                generate(s, req, res);
              });
  post_json(s, "/api/chat", true, [&s](const httplib::Request& req, httplib::Response& res) {
                chat(s, req, res);
              });
  s.http.Get("/api/version", guarded(s, true, [](const httplib::Request&, httplib::Response& res) {
               send_json(res, {{"version", "0.6.4"}});
             }));
  // Single mode lists its one model; store mode every model of the stores.
  s.http.Get("/api/tags", guarded(s, true, [&s](const httplib::Request&, httplib::Response& res) {
               json models = json::array();
               for (const auto& m : s.models.catalog()) models.push_back(tag_entry(m));
               send_json(res, {{"models", std::move(models)}});
             }));
  s.http.Get("/api/ps", guarded(s, true, [&s](const httplib::Request&, httplib::Response& res) {
               json models = json::array();
               if (const Lease m = s.models.loaded()) {
                 store::StoreModel sm;
                 sm.name = m->name();
                 sm.path = m->engine().model().file().path();
                 sm.size = m->engine().model().file().file_size();
                 json e = tag_entry(sm);
                 e["expires_at"] = "0001-01-01T00:00:00Z";
                 e["size_vram"] = 0;
                 models.push_back(std::move(e));
               }
               send_json(res, {{"models", std::move(models)}});
             }));
  post_json(s, "/api/show", true, [&s](const httplib::Request& req, httplib::Response& res) {
                const json body = parse_body(req.body);
                check_fields(body, {"model", "name", "verbose", "system", "template", "options"}, "the request");
                const auto model = opt_string(body, "model");
                const auto name = opt_string(body, "name");
                if (!model && !name) bad_request("'model' is required");
                (void)opt_bool(body, "verbose");
                json out;
                if (s.models.store_mode()) {
                  // Described from the header, without loading the model.
                  const store::StoreModel sm = s.models.find(model ? *model : *name);
                  const auto f = GgufFile::open(sm.path);
                  const std::string tmpl = f->get_str("tokenizer.chat_template", "");
                  out = {{"modelfile", ""},
                         {"parameters", parameters_text(sm.params)},
                         {"template", tmpl},
                         {"details", model_details(*f)},
                         {"model_info", metadata_json(*f)},
                         {"capabilities", capabilities(tmpl)},
                         {"modified_at", rfc3339_now()}};
                } else {
                  const Lease m = s.models.acquire(std::nullopt);
                  const GgufFile& f = m->engine().model().file();
                  out = {{"modelfile", ""},
                         {"parameters", parameters_text(m->params())},
                         {"template", m->prompter().template_source()},
                         {"details", model_details(f)},
                         {"model_info", metadata_json(f)},
                         {"capabilities", capabilities(m->prompter().template_source())},
                         {"modified_at", rfc3339_now()}};
                }
                send_json(res, out);
              });
}

}  // namespace swapmoe::server
