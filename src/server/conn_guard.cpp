#include "server/conn_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace swapmoe::server {

using Clock = std::chrono::steady_clock;

namespace {

enum class Phase { Idle, Request, Handling };

// One live connection. Phase and times are written by its own thread and read by the
// evictor under the registry's lock.
struct Conn {
  int sock = -1;
  std::string peer;
  Phase phase = Phase::Idle;
  Clock::time_point phase_start = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  size_t request_bytes = 0;  // read since the request began (headers and body)
  bool close_requested = false;
  std::atomic<bool> evicted{false};
};

thread_local Conn* tl_conn = nullptr;

std::string peer_of(int sock, std::string* ip_out = nullptr, int* port_out = nullptr) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char buf[INET6_ADDRSTRLEN] = "";
  int port = -1;
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
      port = ntohs(a->sin6_port);
    }
  }
  if (ip_out) *ip_out = buf;
  if (port_out) *port_out = port;
  return buf;
}

void local_of(int sock, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char buf[INET6_ADDRSTRLEN] = "";
  port = -1;
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
      port = ntohs(a->sin6_port);
    }
  }
  ip = buf;
}

// A socket stream whose reads stop at the connection's deadline and byte allowance, so
// that no phase of a request can be stretched by trickling bytes.
class GuardedStream : public httplib::Stream {
 public:
  GuardedStream(Conn& c, const ConnLimits& l) : c_(c), l_(l) {}

  bool is_readable() const override { return wait(POLLIN, remaining_ms()) > 0; }
  bool is_writable() const override {
    if (wait(POLLOUT, 30000) <= 0) return false;
    // Alive unless the peer closed (readable with nothing to read).
    pollfd p{c_.sock, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
      char b;
      if (::recv(c_.sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return false;
    }
    return true;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ < len_) {
      const size_t n = std::min(size, len_ - off_);
      std::memcpy(ptr, buf_ + off_, n);
      off_ += n;
      return static_cast<ssize_t>(n);
    }
    if (c_.evicted.load()) return -1;
    if (c_.phase == Phase::Request && c_.request_bytes > l_.max_header_bytes + kBodyAllowance) return -1;
    if (!is_readable()) return -1;
    const ssize_t n = ::recv(c_.sock, buf_, sizeof buf_, 0);
    if (n <= 0) return n;
    c_.request_bytes += static_cast<size_t>(n);
    const size_t k = std::min(size, static_cast<size_t>(n));
    std::memcpy(ptr, buf_, k);
    off_ = k;
    len_ = static_cast<size_t>(n);
    return static_cast<ssize_t>(k);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    return ::send(c_.sock, ptr, size, MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { peer_of(c_.sock, &ip, &port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { local_of(c_.sock, ip, port); }
  socket_t socket() const override { return c_.sock; }

  // Headers are capped by max_header_bytes; the body by the handler's own limit, which this
  // allowance only backs up (bodies are read in Phase::Request until body_done()).
  static constexpr size_t kBodyAllowance = size_t{1} << 31;

 private:
  int remaining_ms() const {
    if (c_.deadline == Clock::time_point::max()) return 30000;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c_.deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 30000));
  }
  int wait(short events, int ms) const {
    pollfd p{c_.sock, events, 0};
    int r;
    do r = ::poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r;
  }

  Conn& c_;
  const ConnLimits& l_;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
};

}  // namespace

// Live connections, by peer, and the eviction of the slowest request reader.
class ConnRegistry {
 public:
  explicit ConnRegistry(const ConnLimits& l) : l_(l) {}

  // Admits c, evicting a slow connection of the same peer when the peer is at its cap.
  bool admit(Conn* c) {
    std::lock_guard<std::mutex> lk(mu_);
    int& n = per_peer_[c->peer];
    if (n >= l_.max_per_peer && !evict_locked(&c->peer)) {
      ++refused_;
      if (n == 0) per_peer_.erase(c->peer);
      return false;
    }
    ++n;
    conns_.push_back(c);
    return true;
  }
  void remove(Conn* c) {
    std::lock_guard<std::mutex> lk(mu_);
    conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
    if (--per_peer_[c->peer] <= 0) per_peer_.erase(c->peer);
  }
  // Evicts the connection that has been reading its request longest, if longer than
  // slow_after. Called when the pool is nearly full.
  bool evict_slowest() {
    std::lock_guard<std::mutex> lk(mu_);
    return evict_locked(nullptr);
  }
  void set_phase(Conn* c, Phase p, Clock::time_point deadline) {
    std::lock_guard<std::mutex> lk(mu_);
    c->phase = p;
    c->phase_start = Clock::now();
    c->deadline = deadline;
    if (p == Phase::Request) c->request_bytes = 0;
  }
  uint64_t evicted() const { return evicted_.load(); }
  uint64_t refused() const { return refused_.load(); }
  void count_refused() { ++refused_; }

 private:
  bool evict_locked(const std::string* peer) {
    const auto now = Clock::now();
    Conn* worst = nullptr;
    for (Conn* c : conns_) {
      if (peer && c->peer != *peer) continue;
      if (c->evicted.load()) continue;
      // Idle keep-alive connections and slow request readers both hold a thread for nothing.
      if (c->phase == Phase::Handling) continue;
      if (now - c->phase_start < l_.slow_after) continue;
      if (!worst || c->phase_start < worst->phase_start) worst = c;
    }
    if (!worst) return false;
    worst->evicted.store(true);
    ::shutdown(worst->sock, SHUT_RDWR);  // its blocked poll/recv returns at once
    ++evicted_;
    return true;
  }

  const ConnLimits& l_;
  std::mutex mu_;
  std::vector<Conn*> conns_;
  std::map<std::string, int> per_peer_;
  std::atomic<uint64_t> evicted_{0}, refused_{0};
};

namespace {

// The pool: `threads` workers. When the connections running and waiting come within
// `reserve` of the thread count, each new one evicts a slow reader (see ConnRegistry).
class GuardedQueue : public httplib::TaskQueue {
 public:
  GuardedQueue(int threads, int reserve, ConnRegistry& reg) : reserve_(reserve), reg_(reg) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
    threads_ = threads;
  }
  void enqueue(std::function<void()> fn) override {
    bool crowded;
    {
      std::lock_guard<std::mutex> lk(mu_);
      jobs_.push_back(std::move(fn));
      crowded = busy_ + static_cast<int>(jobs_.size()) > threads_ - reserve_;
    }
    cv_.notify_one();
    if (crowded) reg_.evict_slowest();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
      }
      fn();
      std::lock_guard<std::mutex> lk(mu_);
      --busy_;
    }
  }

  int threads_ = 0, reserve_ = 0, busy_ = 0;
  ConnRegistry& reg_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

void answer_busy(int sock) {
  static const char kBusy[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
      "Retry-After: 1\r\nContent-Length: 78\r\n\r\n"
      "{\"error\":{\"message\":\"too many connections\",\"type\":\"server_busy\",\"code\":503}}";
  (void)::send(sock, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

GuardedServer::GuardedServer(ConnLimits limits) : limits_(limits), reg_(std::make_unique<ConnRegistry>(limits_)) {
  ConnRegistry* reg = reg_.get();
  const int threads = std::max(4, limits_.threads);
  const int reserve = std::clamp(limits_.reserve, 1, threads - 1);
  new_task_queue = [threads, reserve, reg] { return new GuardedQueue(threads, reserve, *reg); };
}

GuardedServer::~GuardedServer() = default;

uint64_t GuardedServer::evicted() const { return reg_->evicted(); }
uint64_t GuardedServer::refused() const { return reg_->refused(); }

namespace {
thread_local ConnRegistry* tl_reg = nullptr;
}  // namespace

void GuardedServer::body_done() {
  if (tl_conn && tl_reg) tl_reg->set_phase(tl_conn, Phase::Handling, Clock::time_point::max());
}

void GuardedServer::close_after_response() {
  if (tl_conn) tl_conn->close_requested = true;
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  Conn c;
  c.sock = sock;
  c.peer = peer_of(sock);
  bool ret = false;
  if (!reg_->admit(&c)) {
    answer_busy(sock);
  } else {
    GuardedStream strm(c, limits_);
    for (int count = static_cast<int>(keep_alive_max_count_); count > 0 && is_running(); --count) {
      // Waiting for the next request on a kept-alive connection.
      reg_->set_phase(&c, Phase::Idle, Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_));
      pollfd p{sock, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(keep_alive_timeout_sec_ * 1000)) <= 0 || c.evicted.load()) break;
      reg_->set_phase(&c, Phase::Request, Clock::now() + limits_.header_timeout);
      bool closed = false;
      tl_conn = &c;
      tl_reg = reg_.get();
      ret = process_request(strm, count == 1, closed, [&](httplib::Request&) {
        // Headers are in: the body gets its own deadline.
        reg_->set_phase(&c, Phase::Request, Clock::now() + limits_.body_timeout);
      });
      tl_conn = nullptr;
      if (!ret || closed || c.close_requested || c.evicted.load()) break;
    }
    reg_->remove(&c);
  }
  if (c.close_requested && !c.evicted.load()) {
    // The answer (413, 404, ...) was sent with part of a body still unread. Closing now
    // would reset the connection and could destroy the answer before the client read it,
    // so send FIN and drain what the client is still sending, for a bounded time.
    ::shutdown(sock, SHUT_WR);
    const auto until = Clock::now() + std::chrono::seconds(2);
    char sink[16384];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{sock, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      if (::recv(sock, sink, sizeof sink, 0) <= 0) break;
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace swapmoe::server
