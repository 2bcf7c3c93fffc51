#include "server/api_util.h"

#include "util/json_depth.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <random>

namespace swapmoe::server {

json parse_body(const std::string& body, int max_depth) {
  // Depth is checked on the text, before parsing: see util/json_depth.h.
  if (json_deeper_than(body, max_depth)) bad_request("request body nests deeper than ", max_depth, " levels");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    bad_request("request body is not valid JSON: ", e.what());
  }
  if (!j.is_object()) bad_request("request body must be a JSON object");
  return j;
}

void check_fields(const json& obj, std::initializer_list<const char*> allowed, const char* where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed)
      if (it.key() == a) ok = true;
    if (!ok) bad_request("unknown field '", it.key(), "' in ", where);
  }
}

std::optional<std::string> opt_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) bad_request("'", key, "' must be a string");
  return it->get<std::string>();
}

std::optional<double> opt_number(const json& obj, const char* key, double lo, double hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) bad_request("'", key, "' must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) bad_request("'", key, "' must be between ", lo, " and ", hi);
  return v;
}

std::optional<int64_t> opt_int(const json& obj, const char* key, int64_t lo, int64_t hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  int64_t v = 0;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      bad_request("'", key, "' is out of range");
    v = it->get<int64_t>();
  } else if (it->is_number_float()) {
    // JavaScript clients send 5.0 as 5, but accept an integral float too.
    const double d = it->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) bad_request("'", key, "' must be an integer");
    v = static_cast<int64_t>(d);
  } else {
    bad_request("'", key, "' must be an integer");
  }
  if (v < lo || v > hi) bad_request("'", key, "' must be between ", lo, " and ", hi);
  return v;
}

std::optional<bool> opt_bool(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) bad_request("'", key, "' must be true or false");
  return it->get<bool>();
}

std::vector<std::string> opt_stop(const json& obj, const char* key, size_t max_n) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > max_n) bad_request("'", key, "' has more than ", max_n, " entries");
    for (const auto& s : *it) {
      if (!s.is_string()) bad_request("'", key, "' must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    bad_request("'", key, "' must be a string or an array of strings");
  }
  for (const auto& s : out)
    if (s.size() > 1000) bad_request("a stop string is longer than 1000 bytes");
  return out;
}

json opt_object(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return json::object();
  if (!it->is_object()) bad_request("'", key, "' must be an object");
  return *it;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string random_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s = prefix;
  for (int i = 0; i < 24; ++i) s += hex[rng() & 15];
  return s;
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns % 1000000000));
  return buf;
}

bool secure_equals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace swapmoe::server
