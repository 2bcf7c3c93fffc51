#pragma once
// Request validation shared by the OpenAI and ollama endpoints. Every problem with a
// request becomes an HttpError (status 4xx and a message naming the field), which the
// server turns into a JSON error body; nothing a client sends can crash the server.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace swapmoe::server {

using json = nlohmann::ordered_json;

class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message, std::string type = "invalid_request_error")
      : Error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

template <typename... Args>
[[noreturn]] void bad_request(const Args&... args) {
  throw HttpError(400, cat(args...));
}

// Parses a request body as a JSON object. Rejects malformed JSON, a non-object, and
// nesting deeper than max_depth (checked before parsing, so a deeply nested body cannot
// exhaust the stack).
json parse_body(const std::string& body, int max_depth = 64);

// Throws 400 naming the first key of `obj` that is not in `allowed`.
void check_fields(const json& obj, std::initializer_list<const char*> allowed, const char* where);

// Typed optional fields: absent or null gives nullopt; a wrong type throws 400.
std::optional<std::string> opt_string(const json& obj, const char* key);
std::optional<double> opt_number(const json& obj, const char* key, double lo, double hi);
std::optional<int64_t> opt_int(const json& obj, const char* key, int64_t lo, int64_t hi);
std::optional<bool> opt_bool(const json& obj, const char* key);
// A stop field: a string or an array of at most max_n strings.
std::vector<std::string> opt_stop(const json& obj, const char* key, size_t max_n = 16);
// An object field (absent/null: an empty object).
json opt_object(const json& obj, const char* key);

// JSON text of a value, with invalid UTF-8 replaced (model output may split characters).
std::string dump(const json& j);

// A random hex id with a prefix ("chatcmpl-3f2a...").
std::string random_id(const std::string& prefix);
// RFC 3339 time in UTC with nanoseconds, as ollama writes created_at.
std::string rfc3339_now();
// Constant-time string comparison (API keys).
bool secure_equals(const std::string& a, const std::string& b);

}  // namespace swapmoe::server
