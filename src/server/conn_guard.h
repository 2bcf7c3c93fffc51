#pragma once
// Connection handling of `swapmoe serve` that slow or greedy clients cannot starve (issue
// 15, item 3). cpp-httplib serves each connection on a pool thread and reads with a timeout
// per read() only, so 200 clients sending one byte every 2 s held every thread, and a
// normal request waited 37 s in the queue behind them.
//
// GuardedServer runs each connection's keep-alive loop itself, with its own socket stream:
//   - deadlines per phase: the request line and headers must arrive within header_timeout,
//     the body within body_timeout after them; at most max_header_bytes before the body;
//   - a connection cap per peer address and in total; past it a connection is answered 503
//     at once, on the accepting side of the pool;
//   - a reserve: when the pool is nearly full, each new connection evicts the connection
//     that has spent longest (more than slow_after) reading its request, so that requests
//     that arrive whole are served while slow ones are dropped first;
//   - a handler can ask for the connection to close after its answer (a body left unread,
//     e.g. after 413, is never parsed as a next request).

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace swapmoe::server {

struct ConnLimits {
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds slow_after{1000};  // a request still arriving after this is "slow"
  size_t max_header_bytes = 64u << 10;
  int threads = 128;      // connections served at once
  int reserve = 16;       // threads kept for requests that arrive whole
  int max_per_peer = 64;  // connections from one address
};

class ConnRegistry;

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(ConnLimits limits);
  ~GuardedServer() override;
  const ConnLimits& limits() const { return limits_; }

  // For handlers, on the connection's own thread: the request's body has been read (its
  // deadline no longer applies) / close this connection after the current answer.
  static void body_done();
  static void close_after_response();

  // Statistics for /metrics and tests.
  uint64_t evicted() const;
  uint64_t refused() const;

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnLimits limits_;
  std::unique_ptr<ConnRegistry> reg_;
};

}  // namespace swapmoe::server
