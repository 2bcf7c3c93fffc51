#pragma once
// Internals shared by server.cpp, openai_routes.cpp and ollama_routes.cpp.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "server/api_util.h"
#include "server/conn_guard.h"
#include "server/model_registry.h"
#include "server/server.h"

namespace swapmoe::server {

struct ApiServer::Impl {
  std::unique_ptr<ModelRegistry> owned_models;  // single mode: made from the engine given
  ModelRegistry& models;
  ServerConfig cfg;
  GuardedServer http;
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> http_errors{0};  // 4xx and 5xx answers
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  // serve() / stop() hand-over (server.cpp): httplib's stop() acts only on a listener that
  // already runs, so a stop between bind() and the listener's start must not be lost.
  std::mutex run_mu;
  bool stop_requested = false;  // under run_mu
  bool listening = false;       // under run_mu: serve() is about to listen, or listens
  std::atomic<bool> serve_done{false};

  Impl(Engine& e, const ChatPrompter& p, ServerConfig c)
      : owned_models(std::make_unique<ModelRegistry>(e, p, c.model_name)),
        models(*owned_models),
        cfg(std::move(c)),
        http(conn_limits(cfg)) {}
  Impl(ModelRegistry& m, ServerConfig c) : models(m), cfg(std::move(c)), http(conn_limits(cfg)) {}

  static ConnLimits conn_limits(const ServerConfig& c) {
    ConnLimits l;
    l.header_timeout = std::chrono::milliseconds(c.header_timeout_ms);
    l.body_timeout = std::chrono::milliseconds(c.body_timeout_ms);
    l.threads = std::max(8, c.http_threads);
    l.reserve = c.reserve;
    l.max_per_peer = c.max_per_peer;
    return l;
  }
};

// Wraps a handler: HttpError -> its status with the API's error body; any other exception
// -> 500. `ollama` selects the error body shape ({"error": "msg"} instead of OpenAI's
// {"error": {"message", "type", ...}}).
httplib::Server::Handler guarded(ApiServer::Impl& s, bool ollama,
                                 std::function<void(const httplib::Request&, httplib::Response&)> fn);

void send_json(httplib::Response& res, const json& j, int status = 200);
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type, bool ollama);

// Validates the prompt against the context of the leased model and queues the job, which
// keeps the lease until it is over. Throws HttpError 400 (prompt too long) or 503 (queue full).
std::shared_ptr<Job> start_job(const Lease& m, GenRequest req);

// Default sampling (llama.cpp's server defaults) with a fresh random seed.
SamplerParams default_sampling();
// A request before its fields are read: default sampling, then the model store's defaults
// (ollama's params layer: sampling, num_predict, stop words), which request fields override.
GenRequest request_defaults(const ModelLease& m);

// Streams a job: on_delta turns new text into bytes to send (may return ""), on_done
// gives the closing bytes. A failed write cancels the job.
using DeltaFn = std::function<std::string(const TextDelta&)>;
using DoneFn = std::function<std::string(const GenResult&)>;
void send_stream(httplib::Response& res, std::shared_ptr<Job> job, const char* content_type, DeltaFn on_delta,
                 DoneFn on_done);
// Sends one JSON body when the job is done: finish(result, all text). Keeps the
// connection probed (see server.h) so that a disconnect cancels the job.
using FinishFn = std::function<std::string(const GenResult&, const TextDelta&)>;
void send_when_done(httplib::Response& res, std::shared_ptr<Job> job, FinishFn finish);

// Message content as OpenAI and ollama send it: a string, null, or (OpenAI) an array of
// {"type": "text", "text": ...} parts. Other part types are refused.
std::string message_text(const json& content, const char* where);

// Registers a POST route whose body is JSON: read through a bounded receiver (413 at the
// body limit, whatever the framing), then handed to fn like a plain handler (guarded()).
void post_json(ApiServer::Impl& s, const std::string& pattern, bool ollama,
               std::function<void(const httplib::Request&, httplib::Response&)> fn);

void add_openai_routes(ApiServer::Impl& s);
void add_ollama_routes(ApiServer::Impl& s);

}  // namespace swapmoe::server
