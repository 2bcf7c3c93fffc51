#pragma once
// `swapmoe serve`: an HTTP server (cpp-httplib) with OpenAI-compatible endpoints
// (/v1/chat/completions, /v1/completions, /v1/models), ollama-compatible endpoints
// (/api/generate, /api/chat, /api/tags, /api/show, /api/version, /api/ps), /health and
// /metrics (Prometheus text). Generation goes through the Engine's queue and slots.
//
// Robustness: every handler validates its input and answers a 4xx JSON error for bad
// requests; exceptions never escape a handler. A client that disconnects cancels its
// generation: streaming responses notice when a write fails; non-streaming responses are
// sent as a chunked body that, while the answer is being generated, carries a space
// every half second (JSON allows leading whitespace), so a closed connection is noticed
// the same way.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/chat_prompt.h"
#include "server/engine.h"
#include "server/model_registry.h"

namespace swapmoe::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 11434;                 // 0: any free port (bind() returns it)
  std::string api_key;              // non-empty: required as "Authorization: Bearer KEY"
  int parallel = 1;                 // slots; the Engine's model must have this many sequences
  size_t max_body = 8u << 20;       // larger request bodies get 413
  int http_threads = 128;           // connections served at once (idle keep-alives included)
  std::string model_name;           // name reported in /v1/models and /api/tags
  // Browser defences (server/http_guard.h): Host names beyond IP literals and localhost,
  // and origins whose pages may call the API (CORS).
  std::vector<std::string> allow_hosts;
  std::vector<std::string> allow_origins;
  // Slow clients (server/conn_guard.h).
  int header_timeout_ms = 10000;    // request line and headers
  int body_timeout_ms = 30000;      // the body, after the headers
  int max_per_peer = 64;            // connections from one address
  int reserve = 16;                 // threads kept for requests that arrive whole
};

class ApiServer {
 public:
  // One model (`swapmoe serve MODEL`): every request uses it.
  ApiServer(Engine& engine, const ChatPrompter& prompter, ServerConfig cfg);
  // Several models (`swapmoe serve` without MODEL): requests name theirs (model_registry.h).
  ApiServer(ModelRegistry& models, ServerConfig cfg);
  ~ApiServer();
  // Binds the socket; returns the port (useful with port 0). Throws Error on failure.
  int bind();
  // Serves until stop(); returns when the listener has shut down.
  void serve();
  void stop();

  struct Impl;

 private:
  void setup();
  std::unique_ptr<Impl> impl_;
};

// The Prometheus text for /metrics (exposed for tests).
std::string metrics_text(const EngineMetrics& m, uint64_t http_requests, uint64_t http_errors);

}  // namespace swapmoe::server
