#pragma once
// Run-time values of the template language. They mirror the Python objects Jinja works on:
// lists and dicts are shared references (a namespace or a list mutated inside a loop is seen
// outside it), dicts keep insertion order, strings are UTF-8 and indexed by code point.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace swapmoe::tmpl {

struct Value;
struct Object;
struct Callable;
using Array = std::vector<Value>;
using ArrayP = std::shared_ptr<Array>;
using ObjectP = std::shared_ptr<Object>;
using CallableP = std::shared_ptr<Callable>;

struct Undefined {};

// No string or list built while rendering may exceed this (hostile templates could otherwise
// exhaust memory with replace/join/repetition); exceeding it throws std::length_error, which
// the renderer reports as a TemplateError.
// The renderer lowers the limit to RenderOptions::max_output_bytes for the thread that renders.
constexpr size_t kMaxString = 64u << 20;
inline thread_local size_t tl_size_limit = kMaxString;
inline void check_size(size_t n) {
  if (n > tl_size_limit) throw std::length_error("string or list too large");
}

struct Value {
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string, ArrayP, ObjectP,
               CallableP>
      v;

  Value() : v(Undefined{}) {}
  Value(std::nullptr_t) : v(nullptr) {}
  Value(bool b) : v(b) {}
  Value(int i) : v(int64_t(i)) {}
  Value(int64_t i) : v(i) {}
  Value(double d) : v(d) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(ArrayP a) : v(std::move(a)) {}
  Value(ObjectP o) : v(std::move(o)) {}
  Value(CallableP c) : v(std::move(c)) {}

  // A template loop can build a list nested 100,000 deep ({% set ns.x = [ns.x] %}); freeing it
  // the ordinary way recurses once per level and overflows the stack. The destructor of the last
  // owner of a list or dict therefore takes its nested containers apart iteratively (value.cpp).
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;
  ~Value() {
    if ((v.index() == 6 || v.index() == 7) && owns_last_container()) release_iteratively();
  }

  bool is_undefined() const { return v.index() == 0; }
  bool is_none() const { return v.index() == 1; }
  bool is_bool() const { return v.index() == 2; }
  bool is_int() const { return v.index() == 3; }
  bool is_float() const { return v.index() == 4; }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return v.index() == 5; }
  bool is_array() const { return v.index() == 6; }
  bool is_object() const { return v.index() == 7; }
  bool is_callable() const { return v.index() == 8; }

  bool b() const { return std::get<bool>(v); }
  int64_t i() const { return std::get<int64_t>(v); }
  double f() const { return std::get<double>(v); }
  const std::string& s() const { return std::get<std::string>(v); }
  const ArrayP& a() const { return std::get<ArrayP>(v); }
  const ObjectP& o() const { return std::get<ObjectP>(v); }
  const CallableP& c() const { return std::get<CallableP>(v); }
  // Numeric value of an int, float or bool (Python treats bool as int).
  double as_double() const;

 private:
  bool owns_last_container() const {
    if (v.index() == 6) { const auto& p = std::get<6>(v); return p && p.use_count() == 1; }
    const auto& p = std::get<7>(v);
    return p && p.use_count() == 1;
  }
  void release_iteratively() noexcept;
};

// A dict (or a namespace()/loop object): insertion-ordered key/value pairs. Dicts in chat
// contexts are small, so a linear scan beats a hash map.
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Keyword argument `name`, else positional `index`, else undefined.
  const Value* get(const std::string& name, size_t index) const;
};

class Interp;
struct Callable {
  std::string name;
  std::function<Value(const CallArgs&, Interp&)> fn;
};

Value make_array(Array items = {});
Value make_object();

// Python truthiness: undefined/None/False/0/""/[]/{} are false.
bool truthy(const Value& v);
// The text {{ v }} renders: str(v) in Python ("None", "True", "1.5", "['a', 1]").
std::string to_str(const Value& v);
// repr() as used inside list/dict printing: strings quoted with '.
std::string repr(const Value& v);
// Python's float repr (shortest round-trip: 1.0, 0.1, 1e-05, inf).
std::string float_repr(double d);
// Python == (1 == 1.0, deep list/dict equality).
bool equals(const Value& a, const Value& b);
// Python < for numbers, strings and lists; throws a plain std::runtime_error otherwise
// (the interpreter adds the position).
bool less_than(const Value& a, const Value& b);
const char* type_name(const Value& v);
// True when `target` (an Array or Object) is reachable from v. Mutations that would make a
// list or namespace contain itself are refused: such a cycle would leak and make str() and
// == recurse forever.
bool value_reaches(const Value& v, const void* target);

// json.dumps(v, ensure_ascii, indent, separators=(item_sep, key_sep), sort_keys).
// indent < 0 means None. Undefined dumps as null.
struct JsonStyle {
  int indent = -1;
  bool ensure_ascii = false;
  std::string item_sep;  // default ", " (or "," with indent)
  std::string key_sep = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style);

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

// UTF-8 helpers: code point boundaries (byte offsets) of s, invalid bytes count as one each.
std::vector<size_t> utf8_offsets(const std::string& s);
size_t utf8_length(const std::string& s);
// Decodes the code point at byte i (invalid bytes: U+FFFD, length 1).
uint32_t utf8_decode_at(const std::string& s, size_t i, size_t* len);
// Python's str.isspace() for one code point (what strip()/split() remove by default).
bool py_isspace(uint32_t cp);

}  // namespace swapmoe::tmpl
