#include "util/atomic_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "util/error.h"

namespace swapmoe {

namespace {

// Live temporary files, readable from a signal handler: fixed buffers and atomic flags, no
// allocation. A writer of split output holds one slot per open part.
constexpr int kSlots = 64;
constexpr size_t kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_live[kSlots];
std::once_flag g_handlers_once;

extern "C" void remove_temporaries_and_reraise(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_live[i].load(std::memory_order_acquire)) ::unlink(g_paths[i]);  // async-signal-safe
  // SA_RESETHAND restored the default action: end the process as the signal would have.
  ::raise(sig);
}

void install_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0) continue;
    // A program that handles the signal itself (serve, chat) keeps its handler.
    if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
    struct sigaction sa {};
    sa.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(sig, &sa, nullptr);
  }
}

int take_slot(const std::string& path) {
  if (path.size() >= kPathMax) return -1;
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  for (int i = 0; i < kSlots; ++i) {
    if (!g_live[i].load(std::memory_order_relaxed)) {
      std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
      g_live[i].store(true, std::memory_order_release);
      return i;
    }
  }
  return -1;  // more than 64 open outputs: still removed on error, not on a signal
}

void release_slot(int slot) {
  if (slot >= 0) g_live[slot].store(false, std::memory_order_release);
}

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

AtomicOutput::AtomicOutput(const std::string& path) : path_(path) {
  if (path.empty()) fail("empty output path");
  std::call_once(g_handlers_once, install_handlers);
  const std::string dir = folder_of(path);
  std::string tmpl = dir + "/." + name_of(path) + ".XXXXXX.tmp";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  // mkostemps opens with O_CREAT|O_EXCL: never an existing file, never through a symlink.
  fd_ = ::mkostemps(buf.data(), 4, O_CLOEXEC);
  if (fd_ < 0) fail(path, ": cannot create a temporary file in ", dir, ": ", std::strerror(errno));
  temp_ = buf.data();
  slot_ = take_slot(temp_);
  // mkostemps creates mode 0600; outputs get the usual 0666 & ~umask.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  (void)::fchmod(fd_, 0666 & ~mask);
}

AtomicOutput::~AtomicOutput() { abandon(); }

void AtomicOutput::abandon() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
  release_slot(slot_);
  slot_ = -1;
}

void AtomicOutput::commit() {
  if (fd_ < 0) fail(path_, ": output already committed or abandoned");
  auto failed = [&](const char* step) {
    const std::string msg = cat(temp_, ": ", step, " failed: ", std::strerror(errno));
    abandon();
    fail(msg);
  };
  if (::fsync(fd_) != 0) failed("fsync");
  if (::close(fd_) != 0) {
    fd_ = -1;
    failed("close");
  }
  fd_ = -1;
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) failed(("rename to " + path_).c_str());
  temp_.clear();
  release_slot(slot_);
  slot_ = -1;
  // The rename is durable once the folder is on disk too.
  const int dfd = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void refuse_same_file(const std::string& out, const std::vector<std::string>& inputs) {
  struct stat so {};
  if (::stat(out.c_str(), &so) != 0) return;  // OUT does not exist yet
  for (const std::string& in : inputs) {
    struct stat si {};
    if (!in.empty() && ::stat(in.c_str(), &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
      fail("the output ", out, " is the same file as the input ", in, ": writing it would destroy the input");
  }
}

}  // namespace swapmoe
