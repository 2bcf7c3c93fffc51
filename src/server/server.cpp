#include "server/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "server/http_guard.h"
#include "server/routes.h"

namespace swapmoe::server {

namespace {

// Resident memory of this process in bytes (0 if /proc is unavailable).
uint64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void metric(std::ostringstream& os, const char* name, const char* type, const char* help, double value) {
  os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << value << '\n';
}

}  // namespace

std::string metrics_text(const EngineMetrics& m, uint64_t http_requests, uint64_t http_errors) {
  std::ostringstream os;
  os.precision(10);
  metric(os, "swapmoe_tokens_generated_total", "counter", "Tokens generated.", double(m.tokens_generated_total));
  metric(os, "swapmoe_prompt_tokens_total", "counter", "Prompt tokens received.", double(m.prompt_tokens_total));
  metric(os, "swapmoe_prompt_tokens_evaluated_total", "counter", "Prompt tokens computed (not reused from the KV cache).",
         double(m.prompt_tokens_evaluated));
  metric(os, "swapmoe_tokens_per_second", "gauge", "Decode rate of the last finished request.",
         m.last_tokens_per_second);
  metric(os, "swapmoe_decode_tokens_per_second_avg", "gauge",
         "Decode tokens per second the engine computes (all slots together), overall.",
         m.decode_step_seconds > 0 ? double(m.decode_steps_total) / m.decode_step_seconds : 0.0);
  metric(os, "swapmoe_decode_seconds_total", "counter",
         "Seconds requests spent generating, summed over requests (concurrent requests overlap).",
         m.decode_seconds_total);
  metric(os, "swapmoe_decode_steps_total", "counter", "Decode steps (tokens evaluated after the prompt).",
         double(m.decode_steps_total));
  metric(os, "swapmoe_decode_steps_shared_total", "counter",
         "Decode tokens evaluated in a step with another slot's tokens (continuous batching).",
         double(m.decode_steps_shared));
  metric(os, "swapmoe_prompt_seconds_total", "counter", "Seconds spent evaluating prompts.", m.prompt_seconds_total);
  metric(os, "swapmoe_requests_total", "counter", "Generation requests finished (any outcome).", double(m.requests_total));
  metric(os, "swapmoe_requests_cancelled_total", "counter", "Generations cancelled (client disconnected).",
         double(m.requests_cancelled));
  metric(os, "swapmoe_requests_failed_total", "counter", "Generations that failed with an error.",
         double(m.requests_failed));
  metric(os, "swapmoe_requests_rejected_total", "counter", "Requests refused because the queue was full.",
         double(m.requests_rejected));
  metric(os, "swapmoe_queue_depth", "gauge", "Requests waiting for a free slot.", double(m.queue_depth));
  metric(os, "swapmoe_requests_active", "gauge", "Requests being generated (busy slots).", double(m.active));
  metric(os, "swapmoe_slots", "gauge", "Slots (--parallel): sequences with their own KV cache.",
         double(m.slots));
  metric(os, "swapmoe_expert_cache_hit_rate", "gauge", "Expert cache hit rate (1 when all experts are resident).",
         m.has_expert_cache ? m.cache_hit_rate : 1.0);
  metric(os, "swapmoe_expert_cache_hits_total", "counter", "Expert cache hits.", double(m.cache_hits));
  metric(os, "swapmoe_expert_cache_misses_total", "counter", "Expert cache misses.", double(m.cache_misses));
  metric(os, "swapmoe_bytes_read_total", "counter", "Expert bytes read from disk.", double(m.cache_bytes_read));
  metric(os, "swapmoe_expert_speculative_reads_total", "counter",
         "Experts read speculatively while the disk was idle (included in the bytes read).", double(m.speculative_reads));
  metric(os, "swapmoe_expert_speculative_used_total", "counter",
         "Speculatively read experts later taken into the cache.", double(m.speculative_used));
  // Continuous batching: steps (forward passes) and what the expert cache read per step and
  // per generated token, over the steps that only decoded (prompt chunks read experts for
  // prompt tokens, which would blur the per-token figure).
  const double mib = 1.0 / (1024.0 * 1024.0);
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  metric(os, "swapmoe_steps_total", "counter", "Forward passes (steps) over the slots' next tokens.",
         double(m.steps_total));
  metric(os, "swapmoe_step_tokens_total", "counter", "Tokens evaluated in steps (prompt and decode).",
         double(m.step_tokens_total));
  metric(os, "swapmoe_decode_only_steps_total", "counter", "Steps that evaluated decode tokens only.",
         double(m.decode_only_steps));
  metric(os, "swapmoe_decode_batch_size_avg", "gauge", "Decode tokens per decode-only step (slots decoding together).",
         ratio(double(m.decode_only_tokens), double(m.decode_only_steps)));
  metric(os, "swapmoe_expert_reads_per_step", "gauge", "Experts read from disk per decode-only step.",
         ratio(double(m.decode_only_loads), double(m.decode_only_steps)));
  metric(os, "swapmoe_expert_reads_per_token", "gauge", "Experts read from disk per generated token (decode-only steps).",
         ratio(double(m.decode_only_loads), double(m.decode_only_tokens)));
  metric(os, "swapmoe_expert_read_mib_per_step", "gauge", "MiB of experts read per decode-only step.",
         ratio(double(m.decode_only_bytes_read) * mib, double(m.decode_only_steps)));
  metric(os, "swapmoe_expert_read_mib_per_token", "gauge", "MiB of experts read per generated token (decode-only steps).",
         ratio(double(m.decode_only_bytes_read) * mib, double(m.decode_only_tokens)));
  metric(os, "swapmoe_expert_hits_per_step", "gauge", "Expert cache hits per decode-only step.",
         ratio(double(m.decode_only_hits), double(m.decode_only_steps)));
  metric(os, "swapmoe_expert_hits_per_token", "gauge", "Expert cache hits per generated token (decode-only steps).",
         ratio(double(m.decode_only_hits), double(m.decode_only_tokens)));
  metric(os, "swapmoe_decode_hit_rate", "gauge", "Expert cache hit rate over decode-only steps (1 when resident).",
         m.has_expert_cache ? ratio(double(m.decode_only_hits), double(m.decode_only_hits + m.decode_only_misses)) : 1.0);
  metric(os, "swapmoe_last_step_tokens", "gauge", "Tokens of the last step.", double(m.last_step_tokens));
  metric(os, "swapmoe_last_step_decode_tokens", "gauge", "Decode tokens of the last step.", double(m.last_step_decode));
  metric(os, "swapmoe_last_step_expert_reads", "gauge", "Experts read from disk in the last step.",
         double(m.last_step_loads));
  metric(os, "swapmoe_last_step_read_mib", "gauge", "MiB of experts read in the last step.",
         double(m.last_step_bytes) * mib);
  metric(os, "swapmoe_last_step_hit_rate", "gauge", "Expert cache hit rate in the last step (1 when resident).",
         m.has_expert_cache && m.last_step_hits + m.last_step_misses > 0
             ? double(m.last_step_hits) / double(m.last_step_hits + m.last_step_misses)
             : 1.0);
  metric(os, "swapmoe_tokens_sampled_total", "counter", "Tokens generated so far, running requests included.",
         double(m.tokens_sampled_total));
  metric(os, "swapmoe_http_requests_total", "counter", "HTTP requests answered.", double(http_requests));
  metric(os, "swapmoe_http_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status.",
         double(http_errors));
  metric(os, "swapmoe_resident_memory_bytes", "gauge", "Resident memory of the server process.",
         double(resident_bytes()));
  return os.str();
}

void send_json(httplib::Response& res, const json& j, int status) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type, bool ollama) {
  json body;
  if (ollama) {
    body["error"] = message;
  } else {
    body["error"] = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}};
  }
  send_json(res, body, status);
}

httplib::Server::Handler guarded(ApiServer::Impl& s, bool ollama,
                                 std::function<void(const httplib::Request&, httplib::Response&)> fn) {
  return [&s, ollama, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    try {
      fn(req, res);
    } catch (const HttpError& e) {
      send_error(res, e.status(), e.what(), e.type(), ollama);
    } catch (const TemplateError& e) {
      send_error(res, 400, cat("chat template: ", e.what()), "invalid_request_error", ollama);
    } catch (const std::bad_alloc&) {
      send_error(res, 500, "out of memory", "server_error", ollama);
    } catch (const std::exception& e) {
      send_error(res, 500, e.what(), "server_error", ollama);
    }
    (void)s;
  };
}

SamplerParams default_sampling() {
  SamplerParams p;  // temp 0.8, top_k 40, top_p 0.95, min_p 0.05, as llama.cpp's server
  std::random_device rd;
  p.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return p;
}

GenRequest request_defaults(const ModelLease& m) {
  GenRequest g;
  g.sampling = default_sampling();
  const store::ModelParams& p = m.params();
  if (p.temperature) g.sampling.temp = static_cast<float>(*p.temperature);
  if (p.top_k) g.sampling.top_k = static_cast<int>(*p.top_k);
  if (p.top_p) g.sampling.top_p = static_cast<float>(*p.top_p);
  if (p.min_p) g.sampling.min_p = static_cast<float>(*p.min_p);
  if (p.seed) g.sampling.seed = static_cast<uint64_t>(*p.seed);
  if (p.num_predict && *p.num_predict > 0) g.max_tokens = *p.num_predict;
  g.stop = p.stop;
  return g;
}

std::shared_ptr<Job> start_job(const Lease& m, GenRequest req) {
  Engine& engine = m->engine();
  const int64_t n_ctx = engine.model().n_ctx();
  const auto n_prompt = static_cast<int64_t>(req.prompt.size());
  if (n_prompt == 0) throw HttpError(400, "the prompt is empty");
  // The routes check each field's range; this is the same check the CLI runs, kept here so
  // that no route can hand the sampler a value it was not written for.
  try {
    check_sampler_params(req.sampling);
  } catch (const HttpError&) {
    throw;
  } catch (const Error& e) {
    throw HttpError(400, e.what());
  }
  if (n_prompt > n_ctx)
    throw HttpError(400, cat("the prompt has ", n_prompt, " tokens, more than the context of ", n_ctx, " tokens"),
                    "context_length_exceeded");
  req.hold = m;
  auto job = std::make_shared<Job>(std::move(req));
  if (!engine.submit(job)) throw HttpError(503, "the server is busy (request queue full); retry later", "server_busy");
  return job;
}

namespace {

// Shared state of one chunked response: the text collected so far.
struct StreamState {
  TextDelta all;
  bool finished = false;
};

}  // namespace

void send_stream(httplib::Response& res, std::shared_ptr<Job> job, const char* content_type, DeltaFn on_delta,
                 DoneFn on_done) {
  res.set_header("Cache-Control", "no-cache");
  auto state = std::make_shared<StreamState>();
  res.set_chunked_content_provider(
      content_type,
      [job, state, on_delta = std::move(on_delta), on_done = std::move(on_done)](size_t, httplib::DataSink& sink) {
        // Exceptions must not escape into httplib's worker thread: any failure here ends
        // this response (and cancels its job), nothing else.
        try {
          for (;;) {
            TextDelta d;
            const bool done = job->wait(std::chrono::milliseconds(500), d);
            std::string out = d.empty() ? std::string() : on_delta(d);
            if (done) out += on_done(job->result());
            if (!out.empty() && !sink.write(out.data(), out.size())) {
              job->cancel();
              return false;
            }
            if (done) {
              state->finished = true;
              sink.done();
              return true;
            }
          }
        } catch (const std::exception&) {
          job->cancel();
          return false;
        }
      },
      [job, state](bool success) {
        if (!success || !state->finished) job->cancel();
      });
}

void send_when_done(httplib::Response& res, std::shared_ptr<Job> job, FinishFn finish) {
  auto state = std::make_shared<StreamState>();
  res.set_chunked_content_provider(
      "application/json",
      [job, state, finish = std::move(finish)](size_t, httplib::DataSink& sink) {
        try {
          auto last_write = std::chrono::steady_clock::now();
          for (;;) {
            const bool done = job->wait(std::chrono::milliseconds(500), state->all);
            if (done) {
              const std::string body = finish(job->result(), state->all);
              state->finished = true;
              if (!sink.write(body.data(), body.size())) return false;
              sink.done();
              return true;
            }
            // Probe the connection every half second: a write to a socket the client
            // closed fails (at the latest on the second probe), and then the generation
            // is not worth finishing.
            const auto now = std::chrono::steady_clock::now();
            if (now - last_write >= std::chrono::milliseconds(500)) {
              last_write = now;
              if (!sink.write(" ", 1)) {
                job->cancel();
                return false;
              }
            }
          }
        } catch (const std::exception&) {
          job->cancel();
          return false;
        }
      },
      [job, state](bool success) {
        if (!success || !state->finished) job->cancel();
      });
}

std::string message_text(const json& content, const char* where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string out;
    for (const auto& part : content) {
      if (!part.is_object()) bad_request(where, ": content parts must be objects");
      const auto type = opt_string(part, "type");
      if (!type || *type != "text") bad_request(where, ": only text content parts are supported");
      const auto text = opt_string(part, "text");
      if (!text) bad_request(where, ": a text part needs 'text'");
      out += *text;
    }
    return out;
  }
  bad_request(where, ": 'content' must be a string or an array of text parts");
}

ApiServer::ApiServer(Engine& engine, const ChatPrompter& prompter, ServerConfig cfg)
    : impl_(std::make_unique<Impl>(engine, prompter, std::move(cfg))) {
  setup();
}

ApiServer::ApiServer(ModelRegistry& models, ServerConfig cfg) : impl_(std::make_unique<Impl>(models, std::move(cfg))) {
  setup();
}

void ApiServer::setup() {
  Impl& s = *impl_;
  auto& http = s.http;
  // The connection pool, its deadlines and caps are GuardedServer's (conn_guard.h). The
  // payload limit also covers bodies with Content-Length that no route reads.
  http.set_payload_max_length(s.cfg.max_body);
  http.set_read_timeout(30, 0);
  http.set_write_timeout(30, 0);
  http.set_keep_alive_timeout(5);

  // Browser defences, body size, authentication and counting happen before routing (and
  // before any body byte is read), so no endpoint can forget them; see http_guard.h.
  http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    ++s.http_requests;
    const bool ollama = req.path.rfind("/api/", 0) == 0;
    auto refuse = [&](int status, const std::string& msg, const char* type) {
      send_error(res, status, msg, type, ollama);
      // Whatever body follows is never read: the connection closes after this answer.
      res.set_header("Connection", "close");
      GuardedServer::close_after_response();
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.has_header("Host") && !host_allowed(req.get_header_value("Host"), s.cfg.allow_hosts))
      return refuse(421, cat("Host '", req.get_header_value("Host"),
                             "' is not served here (an IP address, localhost, or a name given with --allow-host)"),
                    "invalid_request_error");
    const bool has_origin = req.has_header("Origin");
    if (has_origin) {
      const std::string origin = req.get_header_value("Origin");
      if (!origin_allowed(origin, s.cfg.allow_origins))
        return refuse(403, cat("Origin '", origin, "' is not allowed (serve --allow-origin ORIGIN)"), "permission_error");
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {
      if (!has_origin) return refuse(405, "OPTIONS is answered for CORS preflights only", "invalid_request_error");
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != "GET" && req.method != "HEAD" && req.method != "POST")
      return refuse(405, cat("method ", req.method, " is not allowed"), "invalid_request_error");
    if (req.method == "POST") {
      // Every POST route takes JSON, so the body must say it is JSON. A web page can send
      // text/plain without a CORS preflight, and a text/plain body can spell any JSON, so it
      // is refused, as is a body with no type. One exception keeps `curl -d` (and the ollama
      // examples written with it) working: application/x-www-form-urlencoded without an
      // Origin header. Browsers send Origin with every POST, and an HTML form cannot deliver
      // JSON in that encoding anyway, since it percent-encodes '{' and '"'.
      const std::string ct = req.get_header_value("Content-Type");
      const bool curl_default = !has_origin && ct.rfind("application/x-www-form-urlencoded", 0) == 0;
      if (!is_json_content_type(ct) && !curl_default)
        return refuse(415,
                      ct.empty() ? std::string("Content-Type must be application/json (none was sent)")
                                 : cat("Content-Type must be application/json, not '", ct, "'"),
                      "invalid_request_error");
      if (req.has_header("Content-Length")) {
        const std::string cl = req.get_header_value("Content-Length");
        errno = 0;
        char* end = nullptr;
        const unsigned long long n = std::strtoull(cl.c_str(), &end, 10);
        if (end == cl.c_str() || *end != '\0' || errno == ERANGE || n > s.cfg.max_body)
          return refuse(413, cat("request body larger than ", s.cfg.max_body, " bytes"), "invalid_request_error");
      }
    }
    if (s.cfg.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string want = "Bearer " + s.cfg.api_key;
    if (!secure_equals(auth, want)) {
      refuse(401, "missing or wrong API key (send Authorization: Bearer KEY)", "authentication_error");
      res.set_header("WWW-Authenticate", "Bearer");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib produces itself (404, 413 body too large, 400 unparsable request) get a
  // JSON body like ours.
  http.set_error_handler(httplib::Server::HandlerWithResponse([&s](const httplib::Request& req, httplib::Response& res) {
    ++s.http_errors;
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const bool ollama = req.path.rfind("/api/", 0) == 0;
    std::string msg;
    switch (res.status) {
      case 404: msg = "not found: " + req.method + " " + req.path; break;
      case 413: msg = "request body too large"; break;
      case 414: msg = "request URI too long"; break;
      default: msg = "bad request"; break;
    }
    send_error(res, res.status, msg, res.status == 404 ? "not_found_error" : "invalid_request_error", ollama);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error", "server_error", false);
  });

  // In store mode nothing may be loaded yet (or a switch is under way): an empty model name
  // and zero figures then.
  http.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    const Lease m = s.models.loaded();
    const EngineMetrics e = m ? m->engine().metrics() : EngineMetrics{};
    send_json(res, {{"status", "ok"}, {"model", m ? m->name() : std::string()}, {"slots", m ? m->engine().n_slots() : 0},
                    {"queue_depth", e.queue_depth}, {"active", e.active}});
  });
  http.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    const Lease m = s.models.loaded();
    res.set_content(metrics_text(m ? m->engine().metrics() : EngineMetrics{}, s.http_requests.load(), s.http_errors.load()),
                    "text/plain; version=0.0.4");
  });
  add_openai_routes(s);
  add_ollama_routes(s);
  // Last: any other POST path is answered without reading its body (httplib would read it
  // whole into memory to look for a plain handler).
  http.Post(".*", [&s](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
    const bool ollama = req.path.rfind("/api/", 0) == 0;
    send_error(res, 404, "not found: POST " + req.path, "not_found_error", ollama);
    res.set_header("Connection", "close");
    GuardedServer::close_after_response();
  });
}

void post_json(ApiServer::Impl& s, const std::string& pattern, bool ollama,
               std::function<void(const httplib::Request&, httplib::Response&)> fn) {
  auto handler = guarded(s, ollama, std::move(fn));
  s.http.Post(pattern, [&s, ollama, handler](const httplib::Request& req, httplib::Response& res,
                                             const httplib::ContentReader& reader) {
    httplib::Request r = req;  // owns the body; headers are small
    bool too_large = false;
    const bool ok = read_body_bounded(reader, s.cfg.max_body, r.body, too_large);
    if (!ok || too_large) {
      res.set_header("Connection", "close");
      GuardedServer::close_after_response();
      if (too_large || res.status == 413)
        send_error(res, 413, cat("request body larger than ", s.cfg.max_body, " bytes"), "invalid_request_error", ollama);
      else
        send_error(res, 400, "could not read the request body", "invalid_request_error", ollama);
      return;
    }
    GuardedServer::body_done();
    handler(r, res);
  });
}

ApiServer::~ApiServer() { stop(); }

int ApiServer::bind() {
  Impl& s = *impl_;
  // httplib's default sets SO_REUSEPORT on Linux, which lets a second server of the same user
  // bind the same port and silently take half of the connections. SO_REUSEADDR alone is what
  // a server wants: a restart can bind over connections still in TIME_WAIT, and a port that a
  // live server holds is refused ("in use").
  s.http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int port = s.cfg.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.cfg.host);
    if (port < 0) fail("cannot bind to ", s.cfg.host, " (any port)");
  } else if (!s.http.bind_to_port(s.cfg.host, port)) {
    fail("cannot bind to ", s.cfg.host, ":", port, " (in use, or no permission)");
  }
  return port;
}

void ApiServer::serve() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lk(s.run_mu);
    if (s.stop_requested) return;  // stopped before it started (a signal right after bind)
    s.listening = true;
  }
  const bool ok = s.http.listen_after_bind();
  s.serve_done = true;
  if (!ok) fail("the HTTP listener stopped with an error");
}

void ApiServer::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lk(s.run_mu);
    s.stop_requested = true;
    if (!s.listening) return;  // serve() has not started and now will not
  }
  // serve() is about to listen or listens. httplib's stop() does nothing until the listener
  // runs (found by the hostile test under load: a SIGTERM right after the "serving" line was
  // lost and the server never stopped), so wait for it to run, or for serve() to be over.
  while (!s.http.is_running() && !s.serve_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.http.stop();
}

}  // namespace swapmoe::server
