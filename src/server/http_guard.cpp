#include "server/http_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace swapmoe::server {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The host part of "host", "host:port", "[v6]" or "[v6]:port".
std::string strip_port(const std::string& h) {
  if (!h.empty() && h[0] == '[') {
    const size_t close = h.find(']');
    return close == std::string::npos ? h : h.substr(0, close + 1);
  }
  const size_t colon = h.rfind(':');
  if (colon != std::string::npos && h.find(':') == colon) return h.substr(0, colon);
  return h;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) == 1;
  return false;
}

}  // namespace

bool host_allowed(const std::string& host_header, const std::vector<std::string>& allowed) {
  const std::string host = lower(strip_port(host_header));
  if (host.empty()) return false;
  if (is_ip_literal(host) || host == "localhost" || ends_with(host, ".localhost")) return true;
  for (const std::string& a : allowed)
    if (a == "*" || lower(strip_port(a)) == host) return true;
  return false;
}

bool origin_allowed(const std::string& origin, const std::vector<std::string>& allowed) {
  std::string o = lower(origin);
  while (!o.empty() && o.back() == '/') o.pop_back();
  for (std::string a : allowed) {
    a = lower(a);
    while (!a.empty() && a.back() == '/') a.pop_back();
    if (a == "*" || a == o) return true;
  }
  return false;
}

bool is_json_content_type(const std::string& content_type) {
  std::string t = lower(content_type.substr(0, content_type.find(';')));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t == "application/json" || (t.rfind("application/", 0) == 0 && ends_with(t, "+json"));
}

bool read_body_bounded(const httplib::ContentReader& reader, size_t limit, std::string& out, bool& too_large) {
  too_large = false;
  return reader([&](const char* data, size_t n) {
    if (out.size() + n > limit) {
      too_large = true;
      return false;  // stops httplib's reader: nothing more is buffered
    }
    out.append(data, n);
    return true;
  });
}

}  // namespace swapmoe::server
